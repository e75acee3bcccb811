import Dispatch
import Foundation
import Synchronization

/// A fixed number of equal buffers, taken on one thread and given back on another: it bounds the memory of a
/// pipeline stage and makes a producer that outruns the stage wait for it.
final class BufferPool: Sendable {
    let bufferSize: Int
    /// Starts at 0 and is signalled up: libdispatch traps when a semaphore is freed below its initial value,
    /// and a producer usually still holds a buffer when the pool goes.
    private let slots = DispatchSemaphore(value: 0)
    private let buffers = Mutex<(free: [StageBuffer], allocated: [StageBuffer])>(([], []))

    init(buffers: Int, bufferSize: Int) {
        self.bufferSize = bufferSize
        for _ in 0..<max(1, buffers) { slots.signal() }
    }

    /// The owners drain their stages before letting the pool go, so no buffer is in use any more.
    deinit {
        buffers.withLock { $0.allocated.forEach { $0.memory.deallocate() } }
    }

    /// A buffer of `bufferSize` bytes; waits while every buffer is taken. Allocated on first use.
    func take() -> UnsafeMutableRawBufferPointer {
        slots.wait()
        return buffers.withLock { buffers in
            if let buffer = buffers.free.popLast() { return buffer }
            let buffer = StageBuffer(memory: .allocate(byteCount: bufferSize, alignment: 64))
            buffers.allocated.append(buffer)
            return buffer
        }.memory
    }

    func give(_ buffer: UnsafeMutableRawBufferPointer) {
        buffers.withLock { $0.free.append(StageBuffer(memory: buffer)) }
        slots.signal()
    }
}

/// Filled buffers on their way to a serial stage, oldest first. The producer pushes one and queues a job; each
/// job pops the oldest. A serial queue runs jobs in order, so every job gets the buffer pushed for it, and the
/// buffer passes between threads through this lock rather than inside a closure.
final class BufferQueue: Sendable {
    private let pending = Mutex<[(buffer: StageBuffer, count: Int)]>([])

    func push(_ buffer: UnsafeMutableRawBufferPointer, count: Int) {
        pending.withLock { $0.append((StageBuffer(memory: buffer), count)) }
    }

    func pop() -> (buffer: UnsafeMutableRawBufferPointer, count: Int) {
        let (buffer, count) = pending.withLock { $0.removeFirst() }
        return (buffer.memory, count)
    }
}

/// A pool's buffer on its way between threads.
// @unchecked: raw memory is not Sendable, but a pool's buffer has one user at a time: the producer that took it,
// then the one stage it was submitted to, then the pool again (handed over through `BufferPool` and
// `BufferQueue`, whose locks order the accesses).
struct StageBuffer: @unchecked Sendable {
    let memory: UnsafeMutableRawBufferPointer
}
