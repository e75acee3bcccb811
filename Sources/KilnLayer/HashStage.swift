import Dispatch
import Foundation
import KilnOCI

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
final class HashStage: @unchecked Sendable {
    /// A run of a batch's bytes, and the key of the file that ends with it (nil when the file goes on).
    private struct Segment {
        var start: Int
        var count: Int
        var endsFile: String?
    }

    /// A file's next bytes start a new batch rather than go into less room than this, so a small file is
    /// read with one `read` and a large one in large reads.
    static let minimumRoom = 64 << 10

    private let queue: DispatchQueue
    private let pool: BufferPool
    /// The batch being filled, on the caller's thread.
    private var batch: UnsafeMutableRawBufferPointer?
    private var used = 0
    private var segments: [Segment] = []
    /// Both touched only on `queue`.
    private var hasher = SHA256()
    private var digests: [String: Digest] = [:]

    init(name: String, bufferSize: Int, buffers: Int = 4) {
        queue = DispatchQueue(label: name)
        pool = BufferPool(buffers: buffers, bufferSize: bufferSize)
    }

    /// Where to read the current file's next bytes: room for `wanted` of them, or for as many as the batch
    /// has left. Waits while every buffer is being hashed.
    func room(for wanted: Int64) -> UnsafeMutableRawBufferPointer {
        let left = pool.bufferSize - used
        if batch == nil || (Int64(left) < wanted && left < Self.minimumRoom) {
            ship()
            batch = pool.take()
        }
        let end = used + Int(min(Int64(pool.bufferSize - used), wanted))
        return UnsafeMutableRawBufferPointer(rebasing: batch![used..<end])
    }

    /// The first `count` bytes of the last `room` are the current file's next bytes. The caller must not
    /// change them.
    func filled(_ count: Int) {
        segments.append(Segment(start: used, count: count, endsFile: nil))
        used += count
    }

    /// The current file has ended: its digest is recorded under `key`, and the next bytes start a new file.
    func endFile(_ key: String) {
        segments.append(Segment(start: used, count: 0, endsFile: key))
    }

    /// Every file's digest, once everything is hashed.
    func finish() -> [String: Digest] {
        ship()
        return queue.sync { digests }
    }

    /// Hands the batch (and the files that ended since, empty ones without a buffer) to the hashing thread,
    /// which returns the buffer to the pool.
    private func ship() {
        guard batch != nil || !segments.isEmpty else { return }
        nonisolated(unsafe) let buffer = batch
        let segments = self.segments
        batch = nil
        self.segments.removeAll(keepingCapacity: true)
        used = 0
        queue.async {
            for segment in segments {
                if let buffer, segment.count > 0 {
                    let end = segment.start + segment.count
                    self.hasher.update(UnsafeRawBufferPointer(rebasing: buffer[segment.start..<end]))
                }
                if let key = segment.endsFile { self.digests[key] = self.hasher.finalize() }
            }
            if let buffer { self.pool.give(buffer) }
        }
    }
}
