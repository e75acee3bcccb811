import Foundation
import Logging

/// Retries and what they were for, for `--verbose` (`KILN_LOG_LEVEL=debug`): the requests Kiln sent again
/// behind the user's back, each with its attempt number and what went wrong.
public enum HTTPLog {
    public static let retries = Logger(label: "kiln.http")
}

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
    /// (then the last error is thrown). `what` names the operation in the log of retries.
    public func run<T>(_ what: String, _ operation: (_ attempt: Int) async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await operation(attempt)
            } catch let error as TransientFailure where error.isTransient && attempt < attempts {
                let wait = delay(after: attempt, retryAfter: error.retryAfter)
                HTTPLog.retries.debug(
                    "\(what): attempt \(attempt) of \(attempts) failed (\(error)); again in \(Self.format(wait))")
                try await Self.sleep(wait)
            }
        }
    }

    static func format(_ seconds: Double) -> String { String(format: "%.2f s", seconds) }

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

/// The policy applied to an operation of several requests (a blob upload: start a session, PATCH chunks, PUT),
/// whose requests the transport sends once each: every request gets the policy's attempts in a row, counted
/// per request (named by the caller, e.g. `PATCH at 4194304`), whatever the others do, and a request's count
/// starts again when it succeeds. So a long upload through a flaky network finishes, while one whose request
/// keeps failing (or keeps losing its session before the same request) stops after `attempts` tries of it.
public struct RetryBudget: Sendable {
    public let policy: RetryPolicy
    private var failures: [String: Int] = [:]
    /// Failures of any request so far.
    public private(set) var total = 0

    public init(_ policy: RetryPolicy) {
        self.policy = policy
    }

    /// Records a failure of `request`: rethrows it when it is not transient or that request's attempts are
    /// spent, else waits.
    public mutating func failed(_ error: Error, request: String) async throws {
        guard let transient = error as? TransientFailure, transient.isTransient else { throw error }
        let count = failures[request, default: 0] + 1
        failures[request] = count
        total += 1
        guard count < policy.attempts else {
            HTTPLog.retries.debug("\(request): giving up after \(count) attempts: \(error)")
            throw error
        }
        let wait = policy.delay(after: count, retryAfter: transient.retryAfter)
        HTTPLog.retries.debug(
            "\(request): attempt \(count) of \(policy.attempts) failed (\(error)); again in \(RetryPolicy.format(wait))"
        )
        try await RetryPolicy.sleep(wait)
    }

    /// `request` succeeded: its failures before no longer count.
    public mutating func succeeded(_ request: String) { failures[request] = nil }
}
