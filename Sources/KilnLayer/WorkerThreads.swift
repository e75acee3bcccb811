import Dispatch
import Foundation
import Synchronization

/// A fixed set of threads of their own that run submitted work in submission order (first come, first
/// started).
///
/// The layer writer runs on a libdispatch worker (the builder's recipe lanes), and libdispatch's global pool
/// is as wide as the machine. Compression work dispatched to that same pool therefore waited for a free
/// worker while the writer itself held one, and on two cores only one chunk was being compressed most of
/// the time. Threads created here are scheduled by the kernel alone.
final class WorkerThreads: Sendable {
    /// Signalled once per queued work item, and once per thread by `stop`.
    private let ready = DispatchSemaphore(value: 0)
    private let count: Int
    private let state = Mutex<(queue: [@Sendable () -> Void], head: Int, stopping: Bool)>(([], 0, false))

    init(count: Int, name: String) {
        self.count = max(1, count)
        for index in 0..<self.count {
            // Named from inside: on Linux a name set before `start` is not applied (see `Blocking.run`).
            Thread { [self] in
                Thread.current.name = "\(name)-\(index)"
                loop()
            }.start()
        }
    }

    /// Queues `work` for the next free thread.
    func run(_ work: @escaping @Sendable () -> Void) {
        state.withLock { $0.queue.append(work) }
        ready.signal()
    }

    /// Lets the threads finish what is queued, then end. Further work is not accepted.
    func stop() {
        state.withLock { $0.stopping = true }
        for _ in 0..<count { ready.signal() }
    }

    private func loop() {
        while true {
            ready.wait()
            let work: (@Sendable () -> Void)? = state.withLock { state in
                guard state.head < state.queue.count else { return nil }
                let work = state.queue[state.head]
                state.head += 1
                if state.head == state.queue.count {
                    // Everything taken: start the array over instead of letting it grow for the whole layer.
                    state.queue.removeAll(keepingCapacity: true)
                    state.head = 0
                }
                return work
            }
            // Woken with nothing queued: only `stop` signals without queueing, and it queues nothing after.
            guard let work else { return }
            work()
        }
    }
}
