import Foundation
import KilnOCI

extension OCILayout {
    /// Stored artifacts whose `subject` is `digest` (an image's SBOM): index.json entries with an
    /// `artifactType`, read and checked against the subject, sorted by digest.
    public func referrers(of digest: Digest) throws -> [Descriptor] {
        try index().manifests.filter { $0.artifactType != nil && hasBlob($0.digest) }.compactMap { entry in
            let manifest = try CanonicalJSON.decode(Manifest.self, from: readBlob(entry.digest))
            guard manifest.subject?.digest == digest else { return nil }
            var descriptor = entry
            descriptor.annotations = manifest.annotations
            descriptor.artifactType = manifest.artifactType ?? manifest.config.mediaType
            return descriptor
        }.sorted { $0.digest < $1.digest }
    }
}
