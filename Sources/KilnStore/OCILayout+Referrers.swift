import Foundation
import KilnOCI

extension OCILayout: ReferrerSource {
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

extension OCILayout {
    /// Drops the untagged artifact entries of index.json (SBOMs, provenance) whose subject no tag reaches any more, so an
    /// untagged image does not stay alive through its own SBOM (garbage collection keeps subjects). Returns
    /// the entries dropped.
    @discardableResult
    public func removeOrphanReferrers() throws -> [Descriptor] {
        var dropped: [Descriptor] = []
        try updateIndex { index in
            let tagged = index.manifests.filter { $0.annotations?[AnnotationKey.refName] != nil }
            var live = Set<Digest>()
            for entry in tagged { live.formUnion(try reachableBlobs(from: entry)) }
            index.manifests.removeAll { entry in
                // Artifacts (SBOMs) and other untagged documents about an image (build provenance) alike.
                guard entry.annotations?[AnnotationKey.refName] == nil,
                    let data = try? readBlob(entry.digest),
                    let subject = (try? CanonicalJSON.decode(Manifest.self, from: data))?.subject,
                    !live.contains(subject.digest)
                else { return false }
                dropped.append(entry)
                return true
            }
        }
        return dropped
    }
}
