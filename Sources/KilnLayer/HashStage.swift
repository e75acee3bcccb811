import Dispatch
import Foundation
import KilnOCI

/// SHA-256 on a thread of its own: the caller fills buffers from a fixed pool, hands them over, and goes on
/// while they are hashed.
///
/// A first build hashes its input files for the layer cache as it reads them into the tar stream. On the
/// layer writer's thread that was a third SHA-256 pass beside the tar stream's, and it made that thread the
/// build's bottleneck for large files; here it runs beside it. The pool bounds memory and makes a reader that
/// outruns the hasher wait.
final class HashStage: @unchecked Sendable {
    private let bufferSize: Int
    private let queue: DispatchQueue
    /// Starts at 0 and is signalled up: libdispatch traps when a semaphore is freed below its initial value.
    private let slots = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var free: [UnsafeMutableRawBufferPointer] = []
    private var allocated: [UnsafeMutableRawBufferPointer] = []
    /// Touched only on `queue`.
    private var hasher = SHA256()

    init(name: String, bufferSize: Int, buffers: Int = 4) {
        self.bufferSize = bufferSize
        queue = DispatchQueue(label: name)
        for _ in 0..<max(1, buffers) { slots.signal() }
    }

    deinit {
        // Every queued closure holds `self`, so nothing reads these any more.
        for buffer in allocated { buffer.deallocate() }
    }

    /// A buffer of `bufferSize` bytes to fill; waits while every buffer is queued.
    func takeBuffer() -> UnsafeMutableRawBufferPointer {
        slots.wait()
        lock.lock()
        defer { lock.unlock() }
        if let buffer = free.popLast() { return buffer }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 64)
        allocated.append(buffer)
        return buffer
    }

    /// Hashes the first `count` bytes of `buffer` (taken from this stage), then returns it to the pool. The
    /// caller must not touch the buffer again.
    func submit(_ buffer: UnsafeMutableRawBufferPointer, count: Int) {
        nonisolated(unsafe) let buffer = buffer
        queue.async {
            self.hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            self.lock.lock()
            self.free.append(buffer)
            self.lock.unlock()
            self.slots.signal()
        }
    }

    /// Ends the digest of everything submitted since the previous `endDigest` and records it under `key`;
    /// the next bytes start a new digest.
    func endDigest(_ key: String) {
        queue.async {
            let digest = self.hasher.finalize()
            self.lock.lock()
            self.digests[key] = digest
            self.lock.unlock()
        }
    }

    /// Every digest ended so far, once everything submitted is hashed.
    func finish() -> [String: Digest] {
        queue.sync {}
        lock.lock()
        defer { lock.unlock() }
        return digests
    }

    private var digests: [String: Digest] = [:]
}
