import Foundation
import KilnTestSupport
import Testing

@testable import KilnHTTP

/// The HTTP transport against real local servers: redirects, Retry-After, TLS with a private CA, timeouts.
@Suite struct HTTPTransportTests {
    func get(_ url: String, headers: [(String, String)] = []) throws -> HTTPRequest {
        HTTPRequest(.GET, try #require(URL(string: url)), headers: headers)
    }

    @Test func redirectsNeverCarryAuthorizationToAnotherHost() async throws {
        try await withHostileServer(rules: [.init("GET", "^/landing", .reply, body: "got:{auth}")]) { other in
            try await withHostileServer(rules: [
                .init("GET", "^/to-port", .reply, status: 302, headers: ["Location": "\(other.url)/landing"]),
                .init(
                    "GET", "^/to-name", .reply, status: 307,
                    headers: ["Location": "http://localhost:\(other.port)/landing"]
                ),
                .init("GET", "^/same", .reply, status: 301, headers: ["Location": "/here"]),
                .init("GET", "^/here", .reply, body: "got:{auth}"),
            ]) { first in
                let transport = try HTTPTransport()
                defer { Task { await transport.shutdown() } }
                let auth = [("Authorization", "Bearer top-secret-token")]
                // Another port of the same address, and another name for it: both are another host.
                for path in ["/to-port", "/to-name"] {
                    let answer = try await transport.send(try get(first.url + path, headers: auth))
                    #expect(answer.status == 200)
                    #expect(String(decoding: answer.body, as: UTF8.self) == "got:", "\(path) carried no Authorization")
                }
                #expect(other.requests.count == 2)
                #expect(other.requests.allSatisfy { $0.auth == nil })
                // The same host keeps it.
                let same = try await transport.send(try get(first.url + "/same", headers: auth))
                #expect(String(decoding: same.body, as: UTF8.self) == "got:Bearer top-secret-token")
                // From TLS to plain HTTP, on the same host and port too, it is dropped.
                func url(_ text: String) throws -> URL { try #require(URL(string: text)) }
                #expect(
                    !HTTPTransport.keepsAuthorization(from: try url("https://r.test/a"), to: try url("http://r.test/b"))
                )
                #expect(
                    HTTPTransport.keepsAuthorization(from: try url("https://r.test/a"), to: try url("https://r.test/b"))
                )
                #expect(
                    HTTPTransport.keepsAuthorization(from: try url("http://r.test/a"), to: try url("https://r.test/b")))
            }
        }
    }

    @Test func retryAfterIsHonouredOnReadsAndUploads() async throws {
        try await withHostileServer(rules: [
            .init("GET", "^/limited", .reply, status: 429, headers: ["Retry-After": "1"], times: 1),
            .init("GET", "^/limited", .reply, body: "ok"),
            .init("PUT", "^/upload", .reply, status: 503, headers: ["Retry-After": "1"], times: 1),
            .init("PUT", "^/upload", .reply, status: 201),
        ]) { server in
            // A tiny back-off: only Retry-After can explain a one-second gap.
            let transport = try HTTPTransport(options: HTTPOptions(attempts: 3, baseDelay: 0.01))
            defer { Task { await transport.shutdown() } }
            let read = try await transport.send(try get(server.url + "/limited"))
            #expect(read.status == 200)
            let upload = HTTPRequest(
                .PUT, try #require(URL(string: server.url + "/upload")), body: .bytes(Data("layer".utf8)),
                retryable: true)
            #expect(try await transport.send(upload).status == 201)
            for (method, path) in [("GET", "/limited"), ("PUT", "/upload")] {
                let times = server.requests.filter { $0.method == method && $0.path == path }.map(\.time)
                #expect(times.count == 2, "\(method) sent twice")
                if times.count == 2 { #expect(times[1] - times[0] >= 0.95, "\(method) waited for Retry-After") }
            }
        }
    }

    /// A Retry-After longer than what is left of the request's deadline ends the request at once with the
    /// server's answer, instead of sleeping past the deadline (it was honoured up to 60 s per attempt).
    @Test func retryAfterCountsInTheDeadline() async throws {
        try await withHostileServer(rules: [
            .init("GET", "^/limited", .reply, status: 429, headers: ["Retry-After": "3600"])
        ]) { server in
            // A deadline far above the time one answer takes on a loaded machine (in the full suite, tests that block
            // the cooperative pool for minutes starve this task), far below the Retry-After, which is honoured whole.
            var options = HTTPOptions(attempts: 5, baseDelay: 0.01, deadline: 600)
            options.retry.maxRetryAfter = 7200
            let transport = try HTTPTransport(options: options)
            defer { Task { await transport.shutdown() } }
            let answer = try await transport.send(try get(server.url + "/limited"))
            #expect(answer.status == 429)
            #expect(server.requests.count == 1, "no attempt after a wait that would pass the deadline")
        }
    }

    /// One deadline spans all the attempts of a request: a server that stalls every answer is given up when it
    /// passes (by default 150 s), not after attempts × idle timeout (it was 5 × 60 s = 305 s). Counted in
    /// attempts, not seconds: a loaded machine stretches time, never the number of 2 s stalls that fit in 7 s.
    @Test func aStalledServerIsGivenUpAtTheRequestDeadline() async throws {
        try await withHostileServer(rules: [.init("GET", "^/stall", .stall, declared: 1000, seconds: 3600)]) { server in
            let transport = try HTTPTransport(
                options: HTTPOptions(attempts: 10, baseDelay: 0.01, idleTimeout: 2, deadline: 7))
            defer { Task { await transport.shutdown() } }
            var message = ""
            do {
                _ = try await transport.send(try get(server.url + "/stall"))
                Issue.record("a stalled answer completed")
            } catch let error as HTTPError {
                message = error.description
                #expect(message.contains("timed out"), "\(error)")
                #expect(message.contains("KILN_DEADLINE"), "\(error)")
            }
            // Each attempt waits at least the 2 s idle limit, so attempts start at most every 2 s: at most 4 start
            // within 7 s (the last one cut at the deadline), where 10 were made before.
            let tries = server.requests.filter { $0.path == "/stall" }.count
            #expect(tries <= 4, "\(tries) attempts")
            if tries >= 2 { #expect(message.contains("waiting for data"), "the stall is named: \(message)") }
            #expect(HTTPOptions(environment: [:]).retry.deadline <= 150, "the default give-up is 150 s at most")
            #expect(HTTPOptions(environment: ["KILN_DEADLINE": "40"]).retry.deadline == 40)
        }
    }

    /// Progress renews the deadline only at the minimum rate: a ~50 B/s transfer completes, and a longer one at
    /// the same rate is cut at a 3 s deadline when the minimum is 1000 B/s (a 1 B/s
    /// trickle ran forever before: no limit but the one-hour exchange). The margins are wide because parallel
    /// tests starve this process for seconds.
    @Test func progressRenewsTheDeadlineOnlyAtTheMinimumRate() async throws {
        // The cut transfer is ten times longer: the cut is checked when this task runs, and in the full suite
        // it can be starved for seconds, long enough for a short trickle to finish first.
        try await withHostileServer(rules: [
            .init("GET", "^/slow", .trickle, declared: 300, seconds: 0.02),
            .init("GET", "^/long", .trickle, declared: 3000, seconds: 0.02),
        ]) { server in
            // The healthy transfer (~6 s) is given a deadline a starved test process cannot pass; the renewal rule
            // itself is checked on the clock below, where no scheduler can stretch time.
            let healthy = try HTTPTransport(
                options: HTTPOptions(
                    attempts: 1, idleTimeout: 3600, overallTimeout: 3600, deadline: 120, minimumRate: 2))
            let trickle = try HTTPTransport(
                options: HTTPOptions(
                    attempts: 1, idleTimeout: 3600, overallTimeout: 3600, deadline: 3, minimumRate: 1000))
            defer {
                Task {
                    await healthy.shutdown()
                    await trickle.shutdown()
                }
            }
            let answer = try await healthy.send(try get(server.url + "/slow"))
            #expect(answer.body.count == 300, "renewed by progress: the whole body arrived")
            do {
                _ = try await trickle.send(try get(server.url + "/long"))
                Issue.record("a transfer below the minimum rate outlived its deadline")
            } catch let error as HTTPError {
                #expect(error.description.contains("less than 1000 B/s"), "\(error)")
                #expect(error.isTransient)
            }
            // The clock itself: a renewal needs the minimum rate since the last one.
            let start = Date()
            let clock = RequestClock(budget: 10, minimumRate: 100, now: start)
            clock.progress(50, now: start.addingTimeInterval(1))
            #expect(clock.renewals == 0, "50 B in 1 s is below 100 B/s")
            clock.progress(200, now: start.addingTimeInterval(2))
            #expect(clock.renewals == 1, "250 B in 2 s is above")
            for second in 3...20 { clock.progress(1, now: start.addingTimeInterval(Double(second))) }
            #expect(clock.renewals == 1, "a 1 B/s trickle never renews")
        }
    }

    /// A request whose connection keeps being reset is given up with what happened (dropped connections, how
    /// many attempts), not "Check the address" as if the server could not be found.
    @Test func droppedConnectionsAreWordedForWhatHappened() async throws {
        try await withHostileServer(rules: [.init("GET", "^/reset", .reset)]) { server in
            let transport = try HTTPTransport(options: HTTPOptions(attempts: 3, baseDelay: 0.01))
            defer { Task { await transport.shutdown() } }
            do {
                _ = try await transport.send(try get(server.url + "/reset?_state=s3cr3t-st4te"))
                Issue.record("a reset connection answered")
            } catch let error as HTTPError {
                let text = error.description
                #expect(text.contains("dropping connections"), "\(text)")
                #expect(text.contains("gave up after 3 attempts"), "\(text)")
                #expect(!text.contains("Check the address"), "\(text)")
                #expect(!text.contains("s3cr3t-st4te") && text.contains("_state=<redacted>"), "\(text)")
            }
            #expect(server.requests.count == 3)
        }
    }

    /// Each request of an upload (sent once by the transport) has the policy's attempts and deadline of its own.
    @Test func anUploadRequestIsGivenUpAtItsDeadline() async throws {
        var budget = RetryBudget(RetryPolicy(attempts: 10_000, baseDelay: 0.01, maxDelay: 0.02, deadline: 0.5))
        let error = HTTPError.dropped(
            url: "http://r/v2/a/blobs/uploads/x?_state=abc123", detail: "the connection was reset")
        var failures = 0
        do {
            while true {
                failures += 1
                try await budget.failed(error, request: "PATCH at 0")
            }
        } catch let final as HTTPError {
            #expect(final.description.contains("gave up after \(failures) attempts"), "\(final)")
            #expect(!final.isTransient, "final: no outer retry")
        }
        #expect(failures > 1 && failures < 10_000)
    }

    @Test func tlsWithAPrivateCertificateAuthority() async throws {
        try await withRegistry(tls: true) { registry in
            let url = "https://\(registry.address)/v2/"
            let untrusting = try HTTPTransport(options: HTTPOptions(attempts: 1))
            do {
                _ = try await untrusting.send(try get(url))
                Issue.record("a certificate from an unknown CA was accepted")
            } catch let error as HTTPError {
                guard case .tls = error else {
                    Issue.record("expected a TLS error, got \(error)")
                    return
                }
                let text = error.description
                #expect(text.contains("--ca-file"))
                #expect(!text.contains(".build/") && !text.contains(".cc:"), "no dependency source paths: \(text)")
            }
            await untrusting.shutdown()
            let trusting = try HTTPTransport(options: HTTPOptions(caFile: registry.caFile))
            let answer = try await trusting.send(try get(url))
            #expect(answer.status == 200)
            #expect(answer.header("Docker-Distribution-Api-Version") != nil)
            await trusting.shutdown()
            #expect(throws: HTTPError.self) {
                _ = try HTTPTransport(options: HTTPOptions(caFile: "/nonexistent/ca.pem"))
            }
        }
    }

    @Test func connectTimeoutEndsAHangingConnect() async throws {
        let silent = try SilentPort()
        defer { silent.stop() }
        let transport = try HTTPTransport(options: HTTPOptions(attempts: 1, connectTimeout: 0.5))
        defer { Task { await transport.shutdown() } }
        do {
            _ = try await transport.send(try get("http://127.0.0.1:\(silent.port)/v2/"))
            Issue.record("a connect to a silent port succeeded")
        } catch let error as HTTPError {
            guard case .timeout(_, let what, _) = error else {
                Issue.record("expected a timeout, got \(error)")
                return
            }
            #expect(what.contains("connecting to 127.0.0.1:\(silent.port)"))
            #expect(error.description.contains("KILN_TIMEOUT"))
        }
        // Timed in its own process: attempts of 0.5 s with back-off, all within a 3 s request deadline, end well
        // before one default 10 s.
        try await withTemporaryDirectory("kiln-connect") { tmp in
            let started = Date()
            let result = try KilnBinary.run(
                ["pull", "127.0.0.1:\(silent.port)/x/y:1", "--store", tmp.path + "/s"],
                environment: [
                    "KILN_CONNECT_TIMEOUT": "0.5", "KILN_DEADLINE": "3", "DOCKER_CONFIG": tmp.path + "/docker",
                ],
                check: false)
            #expect(!result.succeeded && result.status < 128)
            #expect(result.stderr.contains("connecting to 127.0.0.1:\(silent.port) timed out"), "\(result.stderr)")
            #expect(Date().timeIntervalSince(started) < 10)
        }
    }

    /// The server stalls and trickles for far longer than any test runs, so only the limit under test can end
    /// each exchange, and its message says which. (No wall-clock bound here: the whole suite shares two cores
    /// and starves async tests for a minute at a time; the CLI tests measure time in their own process.)
    @Test func idleTimeoutEndsAStalledBodyAndOverallEndsATrickle() async throws {
        try await withHostileServer(rules: [
            .init("GET", "^/stall", .stall, declared: 1000, seconds: 3600),
            .init("GET", "^/trickle", .trickle, declared: 100_000, seconds: 0.2),
        ]) { server in
            let idle = try HTTPTransport(options: HTTPOptions(attempts: 1, idleTimeout: 1, overallTimeout: 3600))
            let overall = try HTTPTransport(options: HTTPOptions(attempts: 1, idleTimeout: 3600, overallTimeout: 2))
            defer {
                Task {
                    await idle.shutdown()
                    await overall.shutdown()
                }
            }
            for (path, transport, expected) in [
                ("/stall", idle, "waiting for data from \(server.address) timed out (1 s)"),
                ("/trickle", overall, "the whole exchange timed out (2 s)"),
            ] {
                let target = FileManager.default.temporaryDirectory.path + "/kiln-idle-\(UUID().uuidString)"
                do {
                    _ = try await transport.download(try get(server.url + path), to: target)
                    Issue.record("\(path) finished")
                } catch let error as HTTPError {
                    #expect(error.description.contains(expected), "\(path): \(error)")
                    #expect(error.isTransient, "a timeout may be tried again")
                }
                #expect(!FileManager.default.fileExists(atPath: target), "nothing left behind")
            }
        }
    }

    @Test func aClosedPortFailsAtOnceNamingTheHost() async throws {
        let port = try freePort()
        let transport = try HTTPTransport()
        defer { Task { await transport.shutdown() } }
        do {
            _ = try await transport.send(try get("http://127.0.0.1:\(port)/v2/"))
            Issue.record("a closed port answered")
        } catch let error as HTTPError {
            #expect(error.description.contains("127.0.0.1:\(port) refused the connection"), "\(error)")
            #expect(!error.isTransient, "a refusal is not retried")
        }
        // The time (under 2 s) is measured where this process cannot starve it: BadAddressTests runs the CLI.
    }

}
