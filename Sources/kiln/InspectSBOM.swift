import ArgumentParser
import Foundation
import KilnBuild
import KilnDebian
import KilnOCI
import KilnStore

extension Inspect {
    /// `kiln inspect --sbom`: the stored SPDX document of each platform's manifest, as stored (an index's
    /// platforms as a JSON array; `--platform` picks one valid document). An image without packages has none:
    /// that is an error naming it.
    func printSBOM(layout: OCILayout, descriptor: Descriptor) throws {
        var documents: [Data] = []
        var images = try layout.images(for: descriptor)
        if let platform = platform.first {
            guard let wanted = Platform(parsing: platform) else {
                throw ValidationError("'\(platform)' is not a platform: write os/arch")
            }
            images = images.filter { $0.config.platform == wanted }
            guard !images.isEmpty else { throw ValidationError("\(reference) has no \(platform) image") }
        }
        for image in images {
            for artifact in try layout.referrers(of: image.manifestDescriptor.digest)
            where artifact.artifactType == SBOM.mediaType {
                let manifest = try CanonicalJSON.decode(Manifest.self, from: layout.readBlob(artifact.digest))
                for layer in manifest.layers where layer.mediaType == SBOM.mediaType {
                    documents.append(try layout.readBlob(layer.digest))
                }
            }
        }
        guard !documents.isEmpty else {
            throw NoSBOM(reference: reference, store: layout.root)
        }
        if documents.count == 1 {
            FileHandle.standardOutput.write(documents[0])
        } else {
            FileHandle.standardOutput.write(
                Data("[".utf8) + documents.joined(separator: Data(",".utf8)) + Data("]".utf8))
        }
        if documents.last?.last != UInt8(ascii: "\n") { FileHandle.standardOutput.write(Data("\n".utf8)) }
    }
}

/// A runtime answer, not a usage error: the image exists but carries no SBOM.
struct NoSBOM: Error, CustomStringConvertible {
    var reference: String
    var store: String
    var description: String {
        "\(reference) has no SBOM in \(store): SBOMs list Debian packages, and this image has none"
    }
}

extension Inspect {
    /// `kiln inspect --provenance`: the stored in-toto statement (SLSA provenance v1) of the image's manifest, or
    /// of one platform's (`--platform`, default the first) for a multi-platform image: one valid document.
    func printProvenance(layout: OCILayout, descriptor: Descriptor) throws {
        let images = try layout.images(for: descriptor)
        var chosen = images.first
        if let platform = platform.first {
            guard let wanted = Platform(parsing: platform) else {
                throw ValidationError("'\(platform)' is not a platform: write os/arch")
            }
            chosen = images.first { $0.config.platform == wanted }
            guard chosen != nil else {
                throw ValidationError(
                    "\(reference) has no \(platform) image; it has \(images.map(\.config.platform.description).joined(separator: ", "))"
                )
            }
        }
        guard let image = chosen,
            let statement = try KilnProvenance.stored(in: layout, manifest: image.manifestDescriptor.digest)
        else {
            throw NoProvenance(reference: reference, store: layout.root)
        }
        let object = try JSONSerialization.jsonObject(with: statement)
        let pretty = try JSONSerialization.data(
            withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        FileHandle.standardOutput.write(pretty + Data("\n".utf8))
    }
}

/// The image was built before Kiln wrote provenance, or came from a registry.
struct NoProvenance: Error, CustomStringConvertible {
    var reference: String
    var store: String
    var description: String {
        "\(reference) has no build provenance in \(store): it was pulled, or built by a Kiln without provenance; build it again"
    }
}
