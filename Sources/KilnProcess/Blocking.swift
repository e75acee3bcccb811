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
            // Named from inside, in the kernel's own place for it: on Linux a Foundation name set before `start`
            // is not applied, and Foundation's setter did not always reach the kernel either (the thread kept the
            // pool thread's name that created it, in a debugger or `top -H`). The kernel keeps 15 bytes.
            Thread {
                nameCurrentThread(name)
                continuation.resume(with: Result { try work() })
            }.start()
        }
    }

    /// Writes the calling thread's name where Linux keeps it (`/proc/thread-self/comm`); a name longer than the
    /// kernel's 15 bytes is cut. Best effort: a thread without a name works the same.
    static func nameCurrentThread(_ name: String) {
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
}
