import Foundation
import KilnTestSupport
import Logging
import Testing

@testable import KilnHTTP

/// How long to wait before trying again: Retry-After as seconds or an HTTP date, capped.
@Suite struct RetryPolicyTests {
    /// Retries happen behind the user's back: they go to the logger the caller put in the options (what
    /// `--verbose` shows), worded with the request, the attempt and why it failed.
    @Test func retriesAreLoggedToTheCallersLogger() async throws {
        let captured = CapturedLog()
        let options = HTTPOptions(attempts: 3, baseDelay: 0.001, logger: captured.logger(level: .debug))
        let value = try await options.retry.run("GET /v2/kiln/blobs/x") { attempt -> Int in
            if attempt == 1 {
                throw HTTPError.connection(url: "http://127.0.0.1/v2/", detail: "connection reset", transient: true)
            }
            return attempt
        }
        #expect(value == 2)
        #expect(captured.contains("GET /v2/kiln/blobs/x: attempt 1 of 3 failed", at: .debug), "\(captured.entries)")
    }

    @Test func givingUpIsLoggedAndAQuietLoggerHearsNothing() async throws {
        let captured = CapturedLog()
        let quiet = CapturedLog()
        for (log, level) in [(captured, Logger.Level.debug), (quiet, .warning)] {
            let policy = HTTPOptions(attempts: 2, baseDelay: 0.001, logger: log.logger(level: level)).retry
            await #expect(throws: HTTPError.self) {
                try await policy.run("HEAD /v2/") { _ -> Int in
                    throw HTTPError.connection(url: "http://127.0.0.1/v2/", detail: "refused", transient: true)
                }
            }
        }
        #expect(captured.contains("HEAD /v2/: giving up after 2 attempts"), "\(captured.entries)")
        #expect(quiet.entries.isEmpty, "\(quiet.entries.map(\.message))")
    }

    @Test func anHTTPDateRetryAfterIsUnderstood() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let later = "Tue, 14 Nov 2023 22:13:22 GMT"  // two seconds after `now`
        #expect(RetryPolicy.parseRetryAfter(later, now: now) == 2)
        #expect(RetryPolicy.parseRetryAfter("3") == 3)
        #expect(RetryPolicy.parseRetryAfter("soon") == nil)
        #expect(RetryPolicy(maxRetryAfter: 60).delay(after: 1, retryAfter: 3600) == 60)
        #expect(RetryPolicy().delay(after: 1, retryAfter: 3600) == 30, "at most 30 s by default")
    }
}
