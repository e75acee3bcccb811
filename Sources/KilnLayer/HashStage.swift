import Dispatch
import Foundation
import KilnOCI
import Synchronization

/// SHA-256 of each input file on a thread of its own: the caller reads files into batches from a fixed pool,
/// hands over full batches, and goes on while they are hashed.
///
/// A first build hashes its input files for the layer cache as it reads them into the tar stream. On the
/// layer writer's thread that was a third SHA-256 pass beside the tar stream's, and it made that thread the
/// build's bottleneck for large files; here it runs beside it. The pool bounds memory and makes a reader that
/// outruns the hasher wait.
///
/// Files are read one after another into the same buffer, and a buffer is handed over only when full: with
/// a hand-off per file, a tree of 15.5k small files cost 31k dispatches, each waking the hashing thread for
/// a few microseconds of work.
final class HashStage: Sendable {
    /// A run of a batch's bytes, and the key of the file that ends with it (nil when the file goes on).
    private struct Segment: Sendable {
        var start: Int
        var count: Int
        var endsFile: String?
    }

    /// The batch being filled: touched only on the caller's thread, so its lock is never contended.
    private struct Filling {
        var batch: StageBuffer?
        var used = 0
        var segments: [Segment] = []
    }

    /// Touched only on `queue` (and by `finish` once it has drained), so never contended.
    private struct Hashing: ~Copyable {
        var hasher = SHA256()
        var digests: [String: Digest] = [:]
    }

    /// A file's next bytes start a new batch rather than go into less room than this, so a small file is
    /// read with one `read` and a large one in large reads.
    static let minimumRoom = 64 << 10

    private let queue: DispatchQueue
    private let pool: BufferPool
    private let filling = Mutex(Filling())
    private let state = Mutex(Hashing())

    init(name: String, bufferSize: Int, buffers: Int = 4) {
        queue = DispatchQueue(label: name)
        pool = BufferPool(buffers: buffers, bufferSize: bufferSize)
    }

    /// Where to read the current file's next bytes: room for `wanted` of them, or for as many as the batch
    /// has left. Waits while every buffer is being hashed.
    func room(for wanted: Int64) -> UnsafeMutableRawBufferPointer {
        let (batch, used) = filling.withLock { ($0.batch, $0.used) }
        let left = pool.bufferSize - used
        var memory: UnsafeMutableRawBufferPointer
        if let batch, Int64(left) >= wanted || left >= Self.minimumRoom {
            memory = batch.memory
        } else {
            ship()
            memory = pool.take()
            filling.withLock { $0.batch = StageBuffer(memory: memory) }
        }
        let start = filling.withLock { $0.used }
        let end = start + Int(min(Int64(pool.bufferSize - start), wanted))
        return UnsafeMutableRawBufferPointer(rebasing: memory[start..<end])
    }

    /// The first `count` bytes of the last `room` are the current file's next bytes. The caller must not
    /// change them.
    func filled(_ count: Int) {
        filling.withLock { filling in
            filling.segments.append(Segment(start: filling.used, count: count, endsFile: nil))
            filling.used += count
        }
    }

    /// The current file has ended: its digest is recorded under `key`, and the next bytes start a new file.
    func endFile(_ key: String) {
        filling.withLock { filling in
            filling.segments.append(Segment(start: filling.used, count: 0, endsFile: key))
        }
    }

    /// Every file's digest, once everything is hashed.
    func finish() -> [String: Digest] {
        ship()
        return queue.sync { state.withLock { $0.digests } }
    }

    /// Hands the batch (and the files that ended since, empty ones without a buffer) to the hashing thread,
    /// which returns the buffer to the pool.
    private func ship() {
        let (batch, segments) = filling.withLock { filling -> (StageBuffer?, [Segment]) in
            let taken = (filling.batch, filling.segments)
            filling.batch = nil
            filling.segments.removeAll(keepingCapacity: true)
            filling.used = 0
            return taken
        }
        guard batch != nil || !segments.isEmpty else { return }
        queue.async {
            self.state.withLock { state in
                for segment in segments {
                    if let batch, segment.count > 0 {
                        let end = segment.start + segment.count
                        state.hasher.update(UnsafeRawBufferPointer(rebasing: batch.memory[segment.start..<end]))
                    }
                    if let key = segment.endsFile { state.digests[key] = state.hasher.finalize() }
                }
            }
            if let batch { self.pool.give(batch.memory) }
        }
    }
}
