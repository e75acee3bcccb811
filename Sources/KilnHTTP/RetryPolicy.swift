import Foundation

/// A failure that may go away when the same operation is tried again (a reset connection, a 429 or 5xx).
public protocol TransientFailure: Error {
    /// Worth another attempt.
    var isTransient: Bool { get }
    /// Seconds the server asked us to wait (Retry-After), if it said.
    var retryAfter: Double? { get }
}

/// Kiln's one retry policy: how many attempts, how long between them (exponential back-off with jitter,
/// capped; a server's Retry-After wins). The transport applies it to each retryable request; an operation made
/// of several requests (a blob upload: start a session, then PUT) applies it to the whole operation and sends
/// its requests as non-retryable, so retries never nest.
public struct RetryPolicy: Sendable {
    public var attempts: Int
    /// First back-off delay in seconds; doubled each attempt, with jitter, capped at `maxDelay`.
    public var baseDelay: Double
    public var maxDelay: Double
    /// The longest Retry-After honoured; a server asking for more gets this.
    public var maxRetryAfter: Double

    public init(attempts: Int = 5, baseDelay: Double = 0.5, maxDelay: Double = 30, maxRetryAfter: Double = 60) {
        self.attempts = max(1, attempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
    }

    /// Statuses that say "try again": timeouts, rate limits, server failures.
    public static let transientStatuses: Set<Int> = [408, 429, 500, 502, 503, 504]

    /// Seconds to wait after failed attempt number `attempt` (1-based).
    public func delay(after attempt: Int, retryAfter: Double?) -> Double {
        if let retryAfter { return min(max(retryAfter, 0), maxRetryAfter) }
        let base = min(baseDelay * pow(2, Double(max(attempt, 1) - 1)), maxDelay)
        return base * Double.random(in: 0.5...1.0)
    }

    /// Runs `operation` until it succeeds, fails with an error that is not transient, or attempts run out
    /// (then the last error is thrown).
    public func run<T>(_ operation: (_ attempt: Int) async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await operation(attempt)
            } catch let error as TransientFailure where error.isTransient && attempt < attempts {
                try await Self.sleep(delay(after: attempt, retryAfter: error.retryAfter))
            }
        }
    }

    public static func sleep(_ seconds: Double) async throws {
        guard seconds > 0 else { return }
        try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
    }

    /// A Retry-After header: delay-seconds or an HTTP date.
    public static func parseRetryAfter(_ value: String?, now: Date = Date()) -> Double? {
        guard let text = value?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        if let seconds = Double(text) { return max(seconds, 0) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: text) else { return nil }
        return max(date.timeIntervalSince(now), 0)
    }
}

/// The policy applied to an operation of several requests that makes progress (a blob upload): it gives up
/// after `attempts` failures in a row, where each step forward (a session opened, a chunk the server
/// confirmed) starts the count again, and after `attempts` failures per request the operation needs in all,
/// so a long upload through a flaky network finishes while one that never completes stops.
public struct RetryBudget: Sendable {
    public let policy: RetryPolicy
    public let limit: Int
    public private(set) var failures = 0
    public private(set) var total = 0

    /// `requests`: how many requests the operation needs when nothing fails.
    public init(_ policy: RetryPolicy, requests: Int) {
        self.policy = policy
        self.limit = policy.attempts * max(1, requests)
    }

    /// Records a failure: rethrows it when it is not transient or the attempts are spent, else waits.
    public mutating func failed(_ error: Error) async throws {
        guard let transient = error as? TransientFailure, transient.isTransient else { throw error }
        failures += 1
        total += 1
        guard failures < policy.attempts, total < limit else { throw error }
        try await RetryPolicy.sleep(policy.delay(after: failures, retryAfter: transient.retryAfter))
    }

    /// The operation moved forward: the failures in a row before no longer count (the total still does).
    public mutating func progressed() { failures = 0 }
}
