import CLinux
import Dispatch
import Foundation
import KilnOCI

#if canImport(Glibc)
    import Glibc
#endif

/// Hashes and writes a blob's bytes off the caller's thread: one serial hashing stage (so the blob's sha256
/// runs beside the tar stream's), then four writing threads, so the disk always has requests queued.
/// A fixed set of buffers (32 MiB) bounds memory.
///
/// A large layer is bound by the disk, because the store fsyncs every blob before renaming it into place.
/// Whole buffers are therefore written with O_DIRECT where the file system accepts it, each at its own
/// offset, several at a time. On the benchmark's VM the page cache's writeback reached about 250–320 MB/s,
/// one 4 MiB direct write at a time 290–460 MB/s, and several at a time more (`bench/RESULTS.md`).
/// The tail, shorter than a buffer, goes through the page cache; the final fsync covers all of it.
///
/// A direct write is done when the disk has the bytes, not when they are durable: a virtual disk's own
/// cache (the host's page cache) still holds them, and the fsync that flushes it waited a second for the
/// whole 777 MB benchmark layer after every byte had been written. So the writer also flushes every
/// `flushInterval` bytes on a thread of its own, while the layer is still being compressed, and the final
/// fsync finds little left to do (`bench/RESULTS.md`, run 3).
final class BlobWriter: @unchecked Sendable {
    /// 4 MiB: a multiple of every logical block size, and as large as one request to a typical virtio or
    /// NVMe disk (`max_sectors_kb`).
    static let bufferSize = 4 << 20
    static let buffers = 8
    static let writers = 4
    /// O_DIRECT wants buffer addresses aligned to the logical block size; a page covers every common disk.
    static let alignment = 4096
    /// 32 MiB: each early flush took about 50 ms on the benchmark's VM; 8–128 MiB all helped, 32 the most.
    static let flushInterval: Int64 = 32 << 20

    private let fd: Int32
    private let path: String
    private let hashing = DispatchQueue(label: "kiln.blob.hash")
    private let writing = WorkerThreads(count: BlobWriter.writers, name: "kiln-blob-write")
    private let flusher = DispatchQueue(label: "kiln.blob.flush")
    private let pending = DispatchGroup()
    /// Starts at 0 and is signalled up: libdispatch traps when a semaphore is freed below its initial value,
    /// and the sink always holds one buffer.
    private let slots = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var free: [UnsafeMutableRawBufferPointer] = []
    private var allocated: [UnsafeMutableRawBufferPointer] = []
    private var failure: Error?
    private var closed = false
    /// Whether O_DIRECT is set on `fd` (under `lock`).
    private var direct: Bool
    /// Where the next submitted buffer goes (submitting thread only).
    private var nextOffset: Int64 = 0
    /// The partly filled last buffer, written by `finish` once every whole buffer is on disk.
    private var tail: (buffer: UnsafeMutableRawBufferPointer, count: Int, offset: Int64)?
    /// Bytes written so far, where the last early flush started, and whether one is running (under `lock`).
    private var written: Int64 = 0
    private var flushedUpTo: Int64 = 0
    private var flushing = false
    private(set) var earlyFlushes = 0
    /// Touched only on `hashing` until `finish` has drained it.
    private var hasher = SHA256()

    /// `directIO: false` writes through the page cache only (what happens where O_DIRECT is refused).
    init(path: String, directIO: Bool = true) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LayerError.output(path: path, reason: String(cString: strerror(errno))) }
        direct = false
        direct = directIO && KILN_O_DIRECT != 0 && setDirect(true)
        for _ in 0..<Self.buffers { slots.signal() }
    }

    deinit {
        close()
        for buffer in allocated { buffer.deallocate() }
    }

    /// Whether whole buffers currently go to the disk directly.
    var writesDirectly: Bool {
        lock.lock()
        defer { lock.unlock() }
        return direct
    }

    /// A buffer of `bufferSize` bytes to fill; waits while every buffer is queued.
    func takeBuffer() -> UnsafeMutableRawBufferPointer {
        slots.wait()
        lock.lock()
        defer { lock.unlock() }
        if let buffer = free.popLast() { return buffer }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferSize, alignment: Self.alignment)
        allocated.append(buffer)
        return buffer
    }

    /// Queues `count` bytes of `buffer`, which comes back to the pool once written. Every buffer but the
    /// blob's last must be full.
    func submit(_ buffer: UnsafeMutableRawBufferPointer, count: Int) throws {
        if let failure = currentFailure() { throw failure }
        precondition(tail == nil, "only the last buffer of a blob may be partly filled")
        let offset = nextOffset
        nextOffset += Int64(count)
        if count < Self.bufferSize {
            tail = (buffer, count, offset)
            nonisolated(unsafe) let buffer = buffer
            hashing.async { self.hash(UnsafeRawBufferPointer(rebasing: buffer[0..<count])) }
            return
        }
        // The buffer belongs to the stages until it is back in `free`.
        nonisolated(unsafe) let buffer = buffer
        pending.enter()
        hashing.async {
            self.hash(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            self.writing.run {
                if self.currentFailure() == nil {
                    do {
                        try self.write(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), at: offset)
                    } catch { self.fail(error) }
                }
                self.release(buffer)
                self.pending.leave()
            }
        }
    }

    /// Waits for every queued buffer, writes the tail, fsyncs, and returns the blob's digest.
    func finish() throws -> Digest {
        hashing.sync {}
        pending.wait()
        flusher.sync {}
        if let failure = currentFailure() { throw failure }
        if let (buffer, count, offset) = tail {
            tail = nil
            defer { release(buffer) }
            lock.lock()
            if direct { direct = !setDirect(false) }
            lock.unlock()
            try write(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), at: offset)
        }
        guard fsync(fd) == 0 else { throw LayerError.output(path: path, reason: String(cString: strerror(errno))) }
        return hasher.finalize()
    }

    func close() {
        hashing.sync {}
        pending.wait()
        flusher.sync {}
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return }
        closed = true
        writing.stop()
        Glibc.close(fd)
    }

    private func hash(_ bytes: UnsafeRawBufferPointer) {
        if currentFailure() == nil { hasher.update(bytes) }
    }

    private func release(_ buffer: UnsafeMutableRawBufferPointer) {
        lock.lock()
        free.append(buffer)
        lock.unlock()
        slots.signal()
    }

    private func write(_ bytes: UnsafeRawBufferPointer, at start: Int64) throws {
        var done = 0
        var retried = false
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(start) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                // A file system that took the flag but not the request, or a short write that left the rest
                // unaligned: everything from here on goes through the page cache.
                if errno == EINVAL, !retried, dropDirect() {
                    retried = true
                    continue
                }
                throw LayerError.output(path: path, reason: String(cString: strerror(errno)))
            }
            done += n
        }
        lock.lock()
        let buffered = !direct
        written += Int64(bytes.count)
        let flushNow = !flushing && written - flushedUpTo >= Self.flushInterval
        if flushNow {
            flushing = true
            flushedUpTo = written
            earlyFlushes += 1
        }
        lock.unlock()
        if flushNow { flusher.async { self.flushEarly() } }
        if buffered {
            // Start writeback now, so the final fsync waits for the last ranges only.
            _ = sync_file_range(fd, start, Int64(bytes.count), UInt32(KILN_SYNC_FILE_RANGE_WRITE))
        }
    }

    /// Makes what is written so far durable while the rest is still being produced. A failure must fail the
    /// blob: Linux reports a writeback error to one fsync of an open file, so the final one would not see it.
    private func flushEarly() {
        let failed = fdatasync(fd) != 0
        let reason = failed ? String(cString: strerror(errno)) : ""
        lock.lock()
        flushing = false
        lock.unlock()
        if failed { fail(LayerError.output(path: path, reason: "flushing to disk: \(reason)")) }
    }

    /// Clears O_DIRECT (another writer may have done so already); true if it is clear now.
    private func dropDirect() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if direct { direct = !setDirect(false) }
        return !direct
    }

    private func setDirect(_ on: Bool) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { return false }
        return fcntl(fd, F_SETFL, on ? flags | KILN_O_DIRECT : flags & ~KILN_O_DIRECT) == 0
    }

    private func currentFailure() -> Error? {
        lock.lock()
        defer { lock.unlock() }
        return failure
    }

    private func fail(_ error: Error) {
        lock.lock()
        defer { lock.unlock() }
        if failure == nil { failure = error }
    }
}
