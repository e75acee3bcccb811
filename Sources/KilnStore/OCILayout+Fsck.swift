import Foundation
import KilnOCI

/// What `kiln fsck` found: every blob re-hashed, every tag's graph walked.
public struct FsckReport: Sendable, Codable {
    public struct Problem: Sendable, Codable {
        public var digest: Digest
        public var path: String
        /// `corrupt: content hashes to …`, `missing`, or why the blob cannot be read.
        public var problem: String
        /// The tags whose image reaches this blob.
        public var tags: [String]
    }

    public var blobsChecked: Int
    public var problems: [Problem]
    public var isClean: Bool { problems.isEmpty }
}

extension OCILayout {
    /// Re-hashes every blob (streamed, so memory stays flat) and names each bad or missing one with the tags
    /// that reach it. Reads only: repairing is deleting the bad blob and rebuilding or pulling again.
    public func fsck(progress: (Int, Int) -> Void = { _, _ in }) throws -> FsckReport {
        let blobs = try allBlobs()
        var problems: [Digest: String] = [:]
        for (n, digest) in blobs.enumerated() {
            progress(n, blobs.count)
            do {
                try VerifyingReader.verify(blobPath(digest), expected: digest)
            } catch StoreError.corruptBlob(_, _, let actual) {
                problems[digest] = "corrupt: its content hashes to \(actual)"
            } catch {
                problems[digest] = "unreadable: \(error)"
            }
        }
        var reachedBy: [Digest: [String]] = [:]
        for tagged in try tags() {
            let reachable: Set<Digest>
            do {
                reachable =
                    ImageGraph.isDocument(tagged.descriptor)
                    ? try ImageGraph.walk(tagged.descriptor) { try readBlob($0.digest) }.digests
                    : [tagged.descriptor.digest]
            } catch StoreError.missingBlob(let digest, _) {
                problems[digest] = "missing"
                reachedBy[digest, default: []].append(tagged.reference)
                continue
            } catch GraphError.malformed(let digest, let mediaType, let detail) {
                // Its bytes match its name, but it is not the document it claims to be (JSON that does not
                // decode, a digest such as `sha256:../../x`): as bad as a corrupt blob, and what it names is unknown.
                if problems[digest] == nil { problems[digest] = "malformed: not a valid \(mediaType): \(detail)" }
                reachedBy[digest, default: []].append(tagged.reference)
                continue
            } catch StoreError.corruptBlob(_, let digest, _) {
                // Already named above (its content hashes to another digest); the tag reaches it.
                reachedBy[digest, default: []].append(tagged.reference)
                continue
            } catch {
                let digest = tagged.descriptor.digest
                if problems[digest] == nil { problems[digest] = "unreadable: \(error)" }
                reachedBy[digest, default: []].append(tagged.reference)
                continue
            }
            for digest in reachable {
                if !hasBlob(digest) { problems[digest] = "missing" }
                reachedBy[digest, default: []].append(tagged.reference)
            }
        }
        let list = problems.keys.sorted().map { digest in
            FsckReport.Problem(
                digest: digest, path: blobPath(digest), problem: problems[digest]!,
                tags: (reachedBy[digest] ?? []).sorted())
        }
        return FsckReport(blobsChecked: blobs.count, problems: list)
    }
}
