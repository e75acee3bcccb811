import Foundation
import KilnDebian
import KilnOCI
import KilnRecipe
import KilnSign
import KilnStore

/// Build provenance: an in-toto Statement v1 with a SLSA provenance v1 predicate per image manifest, written
/// from the plan and the prepared inputs (the same values the build used), so it says exactly what went in:
/// the recipe files and the lock by digest (external parameters), and every url input, Debian package, git
/// source and base image by digest (resolved dependencies). Deterministic: no timestamps but the image's own
/// creation time, no host paths. Stored in the store beside the image (an untagged index.json entry
/// annotated with its subject, not a referrer, so what `push` publishes is unchanged); `kiln release
/// --sign-key` attaches it, DSSE-signed, in cosign's `.att` layout; `kiln inspect --provenance` prints it.
public enum KilnProvenance {
    public static let buildType = "urn:dev.kiln:build-type:recipe:v1"
    public static let builderID = "urn:dev.kiln:builder:kiln"
    /// index.json annotation of the stored statement: the manifest digest it describes.
    public static let subjectKey = "dev.kiln.provenance.subject"
    public static let mediaType = DSSEEnvelope.inTotoPayloadType

    /// What a Kiln build was asked to do.
    public struct ExternalParameters: Codable, Sendable {
        public var image: String
        public var version: String
        public var platform: String
        /// Every recipe file of the image and its base recipes (file name and sha256).
        public var recipes: [ResourceDescriptor]
        public var lock: ResourceDescriptor?
        public var sourceDateEpoch: Int64?
        public var revision: String?
    }

    public typealias Statement = InTotoStatement<SLSAProvenance<ExternalParameters>>

    /// The stored statement of image manifest `digest`, as JSON bytes, or nil.
    public static func stored(in layout: OCILayout, manifest digest: Digest) throws -> Data? {
        guard
            let entry = try layout.index().manifests.first(where: { $0.annotations?[subjectKey] == digest.description })
        else { return nil }
        let manifest = try CanonicalJSON.decode(Manifest.self, from: layout.readBlob(entry.digest))
        guard manifest.subject?.digest == digest, let layer = manifest.layers.first else { return nil }
        return try layout.readBlob(layer.digest)
    }
}

extension Builder {
    func provenance(_ image: PlannedImage, _ platform: PlannedPlatform, subject: Descriptor, base: StoredImage?)
        throws -> Data
    {
        let plan = prepared.plan
        var recipes: [ResourceDescriptor] = []
        for r in platform.dependencies {
            let bytes = (try? Data(contentsOf: URL(fileURLWithPath: r.file))) ?? Data()
            let name = (r.file as NSString).lastPathComponent
            if !recipes.contains(where: { $0.name == name }) {
                recipes.append(ResourceDescriptor(name: name, digest: ["sha256": Digest.sha256(bytes).encoded]))
            }
        }
        var lock: ResourceDescriptor?
        if let bytes = try? Data(contentsOf: URL(fileURLWithPath: plan.lockPath)) {
            lock = ResourceDescriptor(
                name: (plan.lockPath as NSString).lastPathComponent, digest: ["sha256": Digest.sha256(bytes).encoded])
        }
        var dependencies: [ResourceDescriptor] = []
        func add(_ descriptor: ResourceDescriptor) {
            if !dependencies.contains(descriptor) { dependencies.append(descriptor) }
        }
        for r in platform.dependencies {
            for layer in r.layers {
                for (url, _) in layer.downloads {
                    guard let digest = prepared.inputs[url] else { continue }
                    add(ResourceDescriptor(uri: url, digest: ["sha256": digest.encoded]))
                }
                guard let key = layer.packageSet, let set = prepared.packageSet(key) else { continue }
                for pin in set.packages {
                    add(
                        ResourceDescriptor(
                            name: "pkg:deb/debian/\(pin.name)@\(pin.version)?arch=\(pin.architecture)",
                            uri: set.mirror + "/" + pin.filename, digest: ["sha256": pin.sha256]))
                }
            }
            for source in r.sources {
                switch source.kind {
                case .git(let url, let commit, let tree):
                    var digest = ["gitCommit": commit]
                    if let tree { digest["gitTree"] = tree }
                    add(ResourceDescriptor(name: source.name, uri: "git+\(url)", digest: digest))
                case .archive(let url, let sha256):
                    add(ResourceDescriptor(name: source.name, uri: url, digest: ["sha256": sha256.encoded]))
                case .directory: continue
                }
            }
        }
        if case .image(let reference, let digest, _) = image.job.base {
            add(ResourceDescriptor(uri: "docker://\(reference)", digest: ["sha256": digest.encoded]))
        } else if case .recipe(let name, _) = image.job.base, let base {
            add(
                ResourceDescriptor(
                    name: name, digest: ["sha256": base.manifestDescriptor.digest.encoded],
                    annotations: ["dev.kiln.base": "recipe"]))
        }
        let parameters = KilnProvenance.ExternalParameters(
            image: image.name, version: image.version, platform: platform.platform,
            recipes: recipes, lock: lock, sourceDateEpoch: options.sourceDateEpoch, revision: options.revision)
        let statement = KilnProvenance.Statement(
            subject: [.init(name: image.name, digest: subject.digest)],
            predicateType: SLSAProvenance<KilnProvenance.ExternalParameters>.predicateType,
            predicate: SLSAProvenance(
                buildType: KilnProvenance.buildType, externalParameters: parameters,
                resolvedDependencies: dependencies, builderID: KilnProvenance.builderID,
                builderVersion: ["kiln": KilnVersion.current, "encoding": "\(Encoding.version)"]))
        return try CanonicalJSON.encode(statement)
    }

    /// Stores the statement as an artifact manifest (subject: the image manifest) with an untagged index.json
    /// entry annotated `dev.kiln.provenance.subject` (no `artifactType` on the entry, so it is not one of the
    /// referrers `push` publishes).
    func writeProvenance(_ image: PlannedImage, _ platform: PlannedPlatform, subject: Descriptor, base: StoredImage?)
        throws
    {
        let document = try provenance(image, platform, subject: subject, base: base)
        let bytes = try writeArtifact(document, mediaType: KilnProvenance.mediaType, about: subject)
        var entry = Descriptor(mediaType: MediaType.imageManifest, bytes: bytes)
        entry.annotations = [KilnProvenance.subjectKey: subject.digest.description]
        try layout.updateIndex { index in
            index.manifests.removeAll { $0.annotations?[KilnProvenance.subjectKey] == subject.digest.description }
            index.manifests.append(entry)
        }
    }
}
