import Dispatch
import Foundation

/// A fixed number of equal buffers, taken on one thread and given back on another: it bounds the memory of a
/// pipeline stage and makes a producer that outruns the stage wait for it.
final class BufferPool: @unchecked Sendable {
    let bufferSize: Int
    /// Starts at 0 and is signalled up: libdispatch traps when a semaphore is freed below its initial value,
    /// and a producer usually still holds a buffer when the pool goes.
    private let slots = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var free: [UnsafeMutableRawBufferPointer] = []
    private var allocated: [UnsafeMutableRawBufferPointer] = []

    init(buffers: Int, bufferSize: Int) {
        self.bufferSize = bufferSize
        for _ in 0..<max(1, buffers) { slots.signal() }
    }

    /// The owners drain their stages before letting the pool go, so no buffer is in use any more.
    deinit {
        for buffer in allocated { buffer.deallocate() }
    }

    /// A buffer of `bufferSize` bytes; waits while every buffer is taken. Allocated on first use.
    func take() -> UnsafeMutableRawBufferPointer {
        slots.wait()
        lock.lock()
        defer { lock.unlock() }
        if let buffer = free.popLast() { return buffer }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 64)
        allocated.append(buffer)
        return buffer
    }

    func give(_ buffer: UnsafeMutableRawBufferPointer) {
        lock.lock()
        free.append(buffer)
        lock.unlock()
        slots.signal()
    }
}
