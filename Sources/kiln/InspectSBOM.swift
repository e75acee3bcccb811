import ArgumentParser
import Foundation
import KilnDebian
import KilnOCI
import KilnStore

extension Inspect {
    /// `kiln inspect --sbom`: the stored SPDX document of each platform's manifest, as stored (an index's
    /// platforms as a JSON array). An image without packages has none: that is an error naming it.
    func printSBOM(layout: OCILayout, descriptor: Descriptor) throws {
        var documents: [Data] = []
        for image in try layout.images(for: descriptor) {
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
