import Foundation
import Logging
import Synchronization

extension Logger {
    /// Logs at debug, redacted (upload locations carry `_state` tokens): what `--verbose` shows.
    func redactedDebug(_ message: String) {
        debug("\(Redaction.redact(message))")
    }
}

/// A failure that may go away when the same operation is tried again (a reset connection, a 429 or 5xx).
public protocol TransientFailure: Error {
    /// Worth another attempt.
    var isTransient: Bool { get }
    /// Seconds the server asked us to wait (Retry-After), if it said.
    var retryAfter: Double? { get }
    /// The error to report when the retries are over: it says how many attempts were made and for how long (and
    /// what the first attempt met, when that was something else), so the message tells what happened rather than
    /// only the last failure. Default: itself.
    func givingUp(attempts: Int, seconds: Double, first: Error?) -> Error
}

extension TransientFailure {
    public func givingUp(attempts: Int, seconds: Double, first: Error?) -> Error { self }
}

/// Kiln's one retry policy: how many attempts, how long between them (exponential back-off with jitter,
/// capped; a server's Retry-After wins, up to `maxRetryAfter`), and how long one request may take across all its
/// attempts (`deadline`, waits included). The deadline is renewed by progress: whenever the bytes moved since
/// the last renewal average `minimumRate` per second or more, the request has `deadline` seconds again, so a
/// large healthy transfer is never cut, while a stalled or trickling server (below `minimumRate`) is given up
/// after `deadline` seconds in all.
///
/// The transport applies it to each retryable request; an operation made of several requests (a blob upload:
/// start a session, then PUT) applies it per request with a `RetryBudget` and sends its requests as
/// non-retryable, so retries never nest.
public struct RetryPolicy: Sendable {
    /// The most attempts of one request (the deadline usually ends a failing request first).
    public var attempts: Int
    /// First back-off delay in seconds; doubled each attempt, with jitter, capped at `maxDelay`.
    public var baseDelay: Double
    public var maxDelay: Double
    /// The longest Retry-After honoured; a server asking for more gets this (and the wait counts in `deadline`).
    public var maxRetryAfter: Double
    /// Seconds one request may take across all its attempts, back-off and Retry-After included.
    public var deadline: Double
    /// Bytes per second that count as progress and renew `deadline`.
    public var minimumRate: Double
    /// Where retries and what they were for go (at debug: `--verbose`), and every request with its answer (at
    /// trace: `--debug`); the caller's, so the command line decides what a person sees.
    public var logger: Logger

    public static let defaultAttempts = 20
    public static let defaultDeadline: Double = 150
    public static let defaultMinimumRate: Double = 1024

    public init(
        attempts: Int = RetryPolicy.defaultAttempts, baseDelay: Double = 0.5, maxDelay: Double = 8,
        maxRetryAfter: Double = 30, deadline: Double = RetryPolicy.defaultDeadline,
        minimumRate: Double = RetryPolicy.defaultMinimumRate, logger: Logger = Logger(label: "kiln.http")
    ) {
        self.attempts = max(1, attempts)
        self.logger = logger
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
        self.deadline = deadline
        self.minimumRate = minimumRate
    }

    /// The same limits for a request sent once (its attempt still has the deadline).
    public var once: RetryPolicy {
        var policy = self
        policy.attempts = 1
        return policy
    }

    /// Statuses that say "try again": timeouts, rate limits, server failures.
    public static let transientStatuses: Set<Int> = [408, 429, 500, 502, 503, 504]

    /// Seconds to wait after failed attempt number `attempt` (1-based).
    public func delay(after attempt: Int, retryAfter: Double?) -> Double {
        if let retryAfter { return min(max(retryAfter, 0), maxRetryAfter) }
        let base = min(baseDelay * pow(2, Double(max(attempt, 1) - 1)), maxDelay)
        return base * Double.random(in: 0.5...1.0)
    }

    /// A new clock for one request under this policy.
    public func clock() -> RequestClock { RequestClock(budget: deadline, minimumRate: minimumRate) }

    /// Runs `operation` until it succeeds, fails with an error that is not transient, or the request is out of
    /// attempts or out of time on `clock` (then the last error is thrown, as `givingUp` words it). `what` names
    /// the operation in the log of retries.
    public func run<T>(_ what: String, clock: RequestClock? = nil, _ operation: (_ attempt: Int) async throws -> T)
        async throws -> T
    {
        let clock = clock ?? self.clock()
        var attempt = 0
        var first: Error?
        while true {
            attempt += 1
            do {
                return try await operation(attempt)
            } catch let error as TransientFailure where error.isTransient {
                let wait = delay(after: attempt, retryAfter: error.retryAfter)
                if first == nil { first = error }
                guard attempt < attempts, wait < clock.remaining else {
                    if attempts > 1 {
                        logger.redactedDebug(
                            "\(what): giving up after \(attempt) attempts in \(Self.format(clock.elapsed)): \(error)")
                    }
                    throw error.givingUp(attempts: attempt, seconds: clock.elapsed, first: first)
                }
                logger.redactedDebug(
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

/// One request's time across all its attempts: `budget` seconds from its start, waits included. Progress renews
/// it: when the bytes moved (sent or received) since the last renewal average at least `minimumRate` per second
/// (and are at least `minimumRate` bytes), the request has `budget` seconds again from then. A trickle below
/// the rate never renews it, so it ends `budget` seconds after the request started, however it trickles.
public final class RequestClock: Sendable {
    public let budget: Double
    public let minimumRate: Double
    public let started: Date

    private struct Budget {
        var expiry: Date
        /// When the budget was last renewed, and the bytes moved since.
        var mark: Date
        var moved: Int64 = 0
        var renewed = 0
    }

    private let state: Mutex<Budget>

    public init(budget: Double, minimumRate: Double, now: Date = Date()) {
        self.budget = budget
        self.minimumRate = minimumRate
        started = now
        state = Mutex(Budget(expiry: now.addingTimeInterval(budget), mark: now))
    }

    /// Seconds left before the request is given up (negative once past).
    public var remaining: Double {
        state.withLock { $0.expiry.timeIntervalSinceNow }
    }

    /// Seconds since the request started.
    public var elapsed: Double { Date().timeIntervalSince(started) }

    /// How often progress renewed the budget.
    public var renewals: Int {
        state.withLock { $0.renewed }
    }

    /// Records `bytes` moved.
    public func progress(_ bytes: Int, now: Date = Date()) {
        state.withLock { state in
            state.moved += Int64(bytes)
            guard Double(state.moved) >= minimumRate * max(now.timeIntervalSince(state.mark), 1) else { return }
            state.mark = now
            state.moved = 0
            state.expiry = now.addingTimeInterval(budget)
            state.renewed += 1
        }
    }
}

/// The policy applied to an operation of several requests (a blob upload: start a session, PATCH chunks, PUT),
/// whose requests the transport sends once each: every request gets the policy's attempts and deadline, counted
/// per request (named by the caller, e.g. `PATCH at 4194304`), whatever the others do, and a request's count
/// and clock start again when it succeeds. Progress renews the budget: a chunk the registry confirmed moves the
/// upload to the next offset, a new request with attempts of its own. So a long upload through a flaky network
/// finishes, while one whose request keeps failing (or keeps losing its session before the same request) stops
/// after `attempts` tries or `deadline` seconds of it.
public struct RetryBudget: Sendable {
    public let policy: RetryPolicy
    private var failures: [String: (count: Int, since: Date)] = [:]
    /// When the request now being sent started (the end of the one before, or of the wait before it).
    private var current = Date()
    /// Failures of any request so far.
    public private(set) var total = 0

    public init(_ policy: RetryPolicy) {
        self.policy = policy
    }

    /// Records a failure of `request`: rethrows it when it is not transient or that request's attempts or time
    /// are spent (worded by `givingUp`), else waits.
    public mutating func failed(_ error: Error, request: String) async throws {
        guard let transient = error as? TransientFailure, transient.isTransient else { throw error }
        var entry = failures[request] ?? (count: 0, since: current)
        entry.count += 1
        failures[request] = entry
        total += 1
        let elapsed = Date().timeIntervalSince(entry.since)
        let wait = policy.delay(after: entry.count, retryAfter: transient.retryAfter)
        guard entry.count < policy.attempts, elapsed + wait < policy.deadline else {
            policy.logger.redactedDebug(
                "\(request): giving up after \(entry.count) attempts in \(RetryPolicy.format(elapsed)): \(error)")
            throw transient.givingUp(attempts: entry.count, seconds: elapsed, first: nil)
        }
        policy.logger.redactedDebug(
            "\(request): attempt \(entry.count) of \(policy.attempts) failed (\(error)); again in \(RetryPolicy.format(wait))"
        )
        try await RetryPolicy.sleep(wait)
        current = Date()
    }

    /// `request` succeeded: its failures before no longer count, and the next request starts now.
    public mutating func succeeded(_ request: String) {
        failures[request] = nil
        current = Date()
    }
}
