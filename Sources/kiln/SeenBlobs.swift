import Foundation
import KilnOCI
import KilnRegistry

/// The blobs a run found, mounted or uploaded in a registry, for `BlobLocationCache`.
final class SeenBlobs: @unchecked Sendable {
    private let lock = NSLock()
    private var seen: [(Digest, String)] = []

    /// Passes each event on to `next` after noting where a blob now is.
    func tap(_ next: @escaping @Sendable (TransferEvent) -> Void) -> @Sendable (TransferEvent) -> Void {
        { event in
            switch event {
            case .blobSkipped(let repository, let digest, _), .blobMounted(let repository, let digest, _, _),
                .blobUploaded(let repository, let digest, _):
                self.lock.lock()
                self.seen.append((digest, repository))
                self.lock.unlock()
            default: break
            }
            next(event)
        }
    }

    var all: [(Digest, String)] {
        lock.lock()
        defer { lock.unlock() }
        return seen
    }
}
