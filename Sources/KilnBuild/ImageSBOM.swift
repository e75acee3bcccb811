import Foundation
import KilnDebian
import KilnOCI
import KilnRecipe
import KilnStore

extension Builder {
    /// An SPDX document of every Debian package, every `url` input and every build step's source (git commit or
    /// archive) in the image (its own and its base recipes'), stored as
    /// an OCI artifact manifest whose `subject` is the image manifest. It sits in index.json untagged, so
    /// `kiln images` lists only images while `kiln gc` keeps it and `kiln inspect` finds it by subject.
    func writeSBOM(_ image: PlannedImage, _ platform: PlannedPlatform, subject: Descriptor, created: String) throws {
        var packages: [SBOM.Package] = []
        var downloads: [SBOM.Download] = []
        var sources: [SBOM.Source] = []
        for recipe in platform.dependencies {
            for source in recipe.sources {
                switch source.kind {
                case .git(let url, let commit, let tree):
                    sources.append(.git(name: source.name, url: url, commit: commit, tree: tree))
                case .archive(let url, let sha256):
                    sources.append(.archive(name: source.name, url: url, sha256: sha256.encoded))
                case .directory: continue
                }
            }
            for layer in recipe.layers {
                for (url, extract) in layer.downloads {
                    guard let digest = prepared.inputs[url] else { continue }
                    downloads.append(SBOM.Download(url: url, sha256: digest.encoded, members: extract))
                }
            }
            for layer in recipe.layers {
                guard let key = layer.packageSet, let set = prepared.packageSet(key) else { continue }
                // A lock older than `source` names no source packages: they are read from the unpacked .debs.
                var unpackedSource: [String: String] = [:]
                if set.packages.contains(where: { $0.source == nil }), let resolved = prepared.packages[key] {
                    for item in try resolved.unpack() {
                        unpackedSource[item.pin.name] = item.unpacked.control.sourcePackage
                    }
                }
                for pin in set.packages {
                    packages.append(
                        SBOM.Package(
                            name: pin.name, version: pin.version, architecture: pin.architecture, sha256: pin.sha256,
                            source: pin.source ?? unpackedSource[pin.name] ?? pin.name,
                            downloadLocation: set.mirror + "/" + pin.filename))
                }
            }
        }
        guard !packages.isEmpty || !downloads.isEmpty || !sources.isEmpty else { return }
        // Named by the image, not its version: the same image digest gets the same SBOM (one referrer) whatever
        // version it is tagged with.
        let document = try SBOM.document(
            image: image.name, packages: packages, downloads: downloads, sources: sources, created: created)
        let bytes = try writeArtifact(
            document, mediaType: SBOM.mediaType, about: subject, annotations: [AnnotationKey.created: created])
        var entry = Descriptor(mediaType: MediaType.imageManifest, bytes: bytes)
        entry.artifactType = SBOM.mediaType
        entry.annotations = [DebianPackages.sbomSubjectKey: subject.digest.description]
        try layout.updateIndex { index in
            index.manifests.removeAll { $0.annotations?[DebianPackages.sbomSubjectKey] == subject.digest.description }
            index.manifests.append(entry)
        }
    }
}

extension DebianPackages {
    /// Annotation on the SBOM's index.json entry naming the image manifest it describes.
    public static let sbomSubjectKey = "dev.kiln.sbom.subject"

    /// The Debian packages (name, version) the SBOM of the image manifest `digest` records; nil when it has no
    /// SBOM or its SBOM lists only downloads.
    public static func sbomPackages(layout: OCILayout, manifest digest: Digest) throws -> [(
        name: String, version: String
    )]? {
        guard
            let entry = try layout.index().manifests.first(where: {
                $0.annotations?[sbomSubjectKey] == digest.description
            })
        else { return nil }
        let manifest = try CanonicalJSON.decode(Manifest.self, from: layout.readBlob(entry.digest))
        guard let layer = manifest.layers.first, manifest.subject?.digest == digest else { return nil }
        struct Document: Decodable {
            struct Package: Decodable {
                var SPDXID: String
                var name: String
                var versionInfo: String?
            }
            var packages: [Package]
        }
        let document = try JSONDecoder().decode(Document.self, from: layout.readBlob(layer.digest))
        let debian = document.packages.filter { $0.SPDXID.hasPrefix(SBOM.debianIDPrefix) }
        return debian.isEmpty ? nil : debian.map { ($0.name, $0.versionInfo ?? "") }
    }
}

extension Builder {
    /// Stores `document` as an OCI artifact about `subject` (an empty config, the document its one layer, the
    /// subject without its annotations and platform), each blob kept from `kiln gc` by the build's roots; the
    /// SBOM and the provenance are written this way. Returns the artifact manifest's bytes.
    func writeArtifact(
        _ document: Data, mediaType: String, about subject: Descriptor, annotations: [String: String]? = nil
    ) throws -> Data {
        let empty = Data("{}".utf8)
        try roots.protect([Digest.sha256(empty), Digest.sha256(document)])
        _ = try layout.writeBlob(empty)
        _ = try layout.writeBlob(document)
        var about = subject
        about.annotations = nil
        about.platform = nil
        let manifest = Manifest(
            config: Descriptor(mediaType: MediaType.empty, bytes: empty),
            layers: [Descriptor(mediaType: mediaType, bytes: document)], annotations: annotations,
            artifactType: mediaType, subject: about)
        let bytes = try CanonicalJSON.encode(manifest)
        try roots.protect([Digest.sha256(bytes)])
        _ = try layout.writeBlob(bytes)
        return bytes
    }
}
