import Foundation
import Testing

@testable import KilnHTTP

/// How long to wait before trying again: Retry-After as seconds or an HTTP date, capped.
@Suite struct RetryPolicyTests {
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
