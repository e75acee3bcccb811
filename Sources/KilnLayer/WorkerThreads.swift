import Foundation

/// A fixed set of threads of their own that run submitted work in submission order (first come, first
/// started).
///
/// The layer writer runs on a libdispatch worker (the builder's recipe lanes), and libdispatch's global pool
/// is as wide as the machine. Compression work dispatched to that same pool therefore waited for a free
/// worker while the writer itself held one, and on two cores only one chunk was being compressed most of
/// the time. Threads created here are scheduled by the kernel alone.
final class WorkerThreads: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [@Sendable () -> Void] = []
    private var head = 0
    private var stopping = false

    init(count: Int, name: String) {
        for index in 0..<max(1, count) {
            let thread = Thread { [self] in loop() }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    /// Queues `work` for the next free thread.
    func run(_ work: @escaping @Sendable () -> Void) {
        condition.lock()
        queue.append(work)
        condition.signal()
        condition.unlock()
    }

    /// Lets the threads finish what is queued, then end. Further work is not accepted.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while head == queue.count && !stopping { condition.wait() }
            if head == queue.count {
                condition.unlock()
                return
            }
            let work = queue[head]
            head += 1
            if head == queue.count {
                // Everything taken: start the array over instead of letting it grow for the whole layer.
                queue.removeAll(keepingCapacity: true)
                head = 0
            }
            condition.unlock()
            work()
        }
    }
}
