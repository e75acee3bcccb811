import Dispatch
import Foundation
import KilnOCI
import Synchronization

/// SHA-256 on a thread of its own: the caller fills buffers from a fixed pool, hands them over, and goes on
/// while they are hashed.
///
/// A first build hashes its input files for the layer cache as it reads them into the tar stream. On the
/// layer writer's thread that was a third SHA-256 pass beside the tar stream's, and it made that thread the
/// build's bottleneck for large files; here it runs beside it. The pool bounds memory and makes a reader that
/// outruns the hasher wait.
final class HashStage: Sendable {
    private let queue: DispatchQueue
    private let pool: BufferPool
    private let queued = BufferQueue()
    /// Locked only on `queue` (and by `finish` once it has drained), so never contended.
    private let state = Mutex(Hashing())

    private struct Hashing: ~Copyable {
        var hasher = SHA256()
        var digests: [String: Digest] = [:]
    }

    init(name: String, bufferSize: Int, buffers: Int = 4) {
        queue = DispatchQueue(label: name)
        pool = BufferPool(buffers: buffers, bufferSize: bufferSize)
    }

    /// A buffer of `bufferSize` bytes to fill; waits while every buffer is queued.
    func takeBuffer() -> UnsafeMutableRawBufferPointer { pool.take() }

    /// Hashes the first `count` bytes of `buffer` (taken from this stage), then returns it to the pool. The
    /// caller must not touch the buffer again.
    func submit(_ buffer: UnsafeMutableRawBufferPointer, count: Int) {
        queued.push(buffer, count: count)
        queue.async {
            let (buffer, count) = self.queued.pop()
            self.state.withLock { $0.hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<count])) }
            self.pool.give(buffer)
        }
    }

    /// Ends the digest of everything submitted since the previous `endDigest` and records it under `key`;
    /// the next bytes start a new digest.
    func endDigest(_ key: String) {
        queue.async {
            self.state.withLock { state in state.digests[key] = state.hasher.finalize() }
        }
    }

    /// Every digest ended so far, once everything submitted is hashed.
    func finish() -> [String: Digest] {
        queue.sync { state.withLock { $0.digests } }
    }
}
