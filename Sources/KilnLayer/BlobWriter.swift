import Dispatch
import Foundation
import KilnOCI
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Hashes and writes a blob's bytes off the caller's thread, and makes them durable as they go.
///
/// One serial stage hashes each full buffer and writes it to the file (through the page cache), so the blob's
/// sha256 runs beside the tar stream's; a fixed set of buffers bounds memory. The store fsyncs every blob
/// before renaming it into place, and on the benchmark's VM a single fsync at the end of the 777 MB layer
/// waited about a second after the last byte was written, because the virtual disk (the host) only then
/// started writing. So every `flushInterval` bytes a second thread calls fdatasync while the layer is still
/// being produced, and the final fsync finds almost nothing left to do.
///
/// Page-cache writes with these early flushes were also faster here than O_DIRECT writes (4 writer threads,
/// 4 MiB requests, tried in 826427f; see run 3 of `bench/RESULTS.md`): the kernel's writeback sends larger
/// requests and keeps more of them in flight than direct writes, which ext4 serialises while they extend the
/// file.
final class BlobWriter: Sendable {
    static let bufferSize = 4 << 20
    static let buffers = 4
    /// 32 MiB: each early flush took about 50 ms on the benchmark's VM; 8–128 MiB all helped, 32 the most.
    static let flushInterval: Int64 = 32 << 20

    private struct Status {
        var failure: Error?
        var closed = false
        /// Whether an early flush is running, and how many were started.
        var flushing = false
        var earlyFlushes = 0
    }

    /// What the writing stage has done; locked only by that stage until `finish` has drained it.
    private struct Stream: ~Copyable {
        var hasher = SHA256()
        var written: Int64 = 0
        var flushedUpTo: Int64 = 0
    }

    private let fd: Int32
    private let path: String
    private let writing = DispatchQueue(label: "kiln.blob.write")
    private let flusher = DispatchQueue(label: "kiln.blob.flush")
    private let pool = BufferPool(buffers: BlobWriter.buffers, bufferSize: BlobWriter.bufferSize)
    private let status = Mutex(Status())
    private let stream = Mutex(Stream())
    /// Buffers submitted and not yet written, oldest first: each `writing` job takes the oldest, so a buffer
    /// passes to the stage through this queue instead of being captured by a closure.
    private let queued = BufferQueue()

    var earlyFlushes: Int { status.withLock { $0.earlyFlushes } }

    init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LayerError.output(path: path, reason: String(cString: strerror(errno))) }
    }

    deinit { close() }

    /// A buffer of `bufferSize` bytes to fill; waits while every buffer is queued.
    func takeBuffer() -> UnsafeMutableRawBufferPointer { pool.take() }

    /// Queues the first `count` bytes of `buffer`, which comes back to the pool once written.
    func submit(_ buffer: UnsafeMutableRawBufferPointer, count: Int) throws {
        if let failure = currentFailure() { throw failure }
        queued.push(buffer, count: count)
        writing.async {
            let (buffer, count) = self.queued.pop()
            defer { self.pool.give(buffer) }
            guard self.currentFailure() == nil else { return }
            let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
            do { try self.write(bytes) } catch { self.fail(error) }
        }
    }

    /// Waits for every queued buffer, fsyncs, and returns the blob's digest.
    func finish() throws -> Digest {
        writing.sync {}
        flusher.sync {}
        if let failure = currentFailure() { throw failure }
        guard fsync(fd) == 0 else { throw LayerError.output(path: path, reason: String(cString: strerror(errno))) }
        return stream.withLock { $0.hasher.finalize() }
    }

    func close() {
        writing.sync {}
        flusher.sync {}
        status.withLock { status in
            guard !status.closed else { return }
            status.closed = true
            Glibc.close(fd)
        }
    }

    /// On `writing`.
    private func write(_ bytes: UnsafeRawBufferPointer) throws {
        let flushNow = try stream.withLock { stream in
            stream.hasher.update(bytes)
            var done = 0
            while done < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw LayerError.output(path: path, reason: String(cString: strerror(errno)))
                }
                done += n
            }
            stream.written += Int64(bytes.count)
            guard stream.written - stream.flushedUpTo >= Self.flushInterval else { return false }
            let start = status.withLock { status in
                guard !status.flushing else { return false }
                status.flushing = true
                status.earlyFlushes += 1
                return true
            }
            if start { stream.flushedUpTo = stream.written }
            return start
        }
        if flushNow { flusher.async { self.flushEarly() } }
    }

    /// Makes what is written so far durable while the rest is still being produced. A failure must fail the
    /// blob: Linux reports a writeback error to one fsync of an open file, so the final one would not see it.
    private func flushEarly() {
        let failed = fdatasync(fd) != 0
        let reason = failed ? String(cString: strerror(errno)) : ""
        status.withLock { $0.flushing = false }
        if failed { fail(LayerError.output(path: path, reason: "flushing to disk: \(reason)")) }
    }

    private func currentFailure() -> Error? {
        status.withLock { $0.failure }
    }

    private func fail(_ error: Error) {
        status.withLock { status in
            if status.failure == nil { status.failure = error }
        }
    }
}
