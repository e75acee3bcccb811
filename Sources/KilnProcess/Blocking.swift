import Foundation

/// Blocking work called from async code: waiting for a build step (waitpid), writing a layer, unpacking an
/// environment. Swift's cooperative pool has one thread per core (two on a small CI runner), so a blocking call
/// made on it holds a thread for its whole duration, and two of them stall every other task of the process,
/// among them HTTP transfers whose deadlines count the wait. `run` gives the work a thread of its own and
/// suspends the caller until it is done, so the pool stays free for the rest.
public enum Blocking {
    /// Runs `work` on a new thread and returns its result (or rethrows its error). The work is not cancelled
    /// with the calling task: it runs to its end, as it would have on the pool. Starting a thread costs tens
    /// of microseconds, nothing beside work worth moving off the pool.
    public static func run<T: Sendable>(
        _ name: String = "kiln-blocking", _ work: @escaping @Sendable () throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            // Named from inside: on Linux a name set before `start` is not applied, and the thread would show the
            // creating pool thread's name in a debugger or `top -H`.
            Thread {
                Thread.current.name = name
                continuation.resume(with: Result { try work() })
            }.start()
        }
    }
}
