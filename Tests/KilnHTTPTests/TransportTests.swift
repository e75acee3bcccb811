import Foundation
import KilnTestSupport
import Testing

@testable import KilnHTTP

/// The HTTP transport against real local servers: redirects, Retry-After, TLS with a private CA, timeouts.
@Suite struct TransportTests {
    func get(_ url: String, headers: [(String, String)] = []) throws -> HTTPRequest {
        HTTPRequest(.GET, try #require(URL(string: url)), headers: headers)
    }

    @Test func redirectsNeverCarryAuthorizationToAnotherHost() async throws {
        let other = try HostileServer(rules: [.init("GET", "^/landing", .reply, body: "got:{auth}")])
        let first = try HostileServer(rules: [
            .init("GET", "^/to-port", .reply, status: 302, headers: ["Location": "\(other.url)/landing"]),
            .init(
                "GET", "^/to-name", .reply, status: 307, headers: ["Location": "http://localhost:\(other.port)/landing"]
            ),
            .init("GET", "^/same", .reply, status: 301, headers: ["Location": "/here"]),
            .init("GET", "^/here", .reply, body: "got:{auth}"),
        ])
        defer {
            first.stop()
            other.stop()
        }
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
    }

    @Test func retryAfterIsHonouredOnReadsAndUploads() async throws {
        let server = try HostileServer(rules: [
            .init("GET", "^/limited", .reply, status: 429, headers: ["Retry-After": "1"], times: 1),
            .init("GET", "^/limited", .reply, body: "ok"),
            .init("PUT", "^/upload", .reply, status: 503, headers: ["Retry-After": "1"], times: 1),
            .init("PUT", "^/upload", .reply, status: 201),
        ])
        defer { server.stop() }
        // A tiny back-off: only Retry-After can explain a one-second gap.
        let transport = try HTTPTransport(options: HTTPOptions(attempts: 3, baseDelay: 0.01))
        defer { Task { await transport.shutdown() } }
        let read = try await transport.send(try get(server.url + "/limited"))
        #expect(read.status == 200)
        let upload = HTTPRequest(
            .PUT, try #require(URL(string: server.url + "/upload")), body: .bytes(Data("layer".utf8)), retryable: true)
        #expect(try await transport.send(upload).status == 201)
        for (method, path) in [("GET", "/limited"), ("PUT", "/upload")] {
            let times = server.requests.filter { $0.method == method && $0.path == path }.map(\.time)
            #expect(times.count == 2, "\(method) sent twice")
            if times.count == 2 { #expect(times[1] - times[0] >= 0.95, "\(method) waited for Retry-After") }
        }
    }

    @Test func anHTTPDateRetryAfterIsUnderstood() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let later = "Tue, 14 Nov 2023 22:13:22 GMT"  // two seconds after `now`
        #expect(RetryPolicy.parseRetryAfter(later, now: now) == 2)
        #expect(RetryPolicy.parseRetryAfter("3") == 3)
        #expect(RetryPolicy.parseRetryAfter("soon") == nil)
        #expect(RetryPolicy(maxRetryAfter: 60).delay(after: 1, retryAfter: 3600) == 60)
    }

    @Test func tlsWithAPrivateCertificateAuthority() async throws {
        let registry = try RegistryServer(tls: true)
        defer { registry.stop() }
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
        #expect(throws: HTTPError.self) { _ = try HTTPTransport(options: HTTPOptions(caFile: "/nonexistent/ca.pem")) }
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
        // Timed in its own process: five attempts of 0.5 s with back-off end well before one default 10 s.
        let tmp = try TemporaryDirectory("kiln-connect")
        defer { tmp.remove() }
        let started = Date()
        let result = try KilnBinary.run(
            ["pull", "127.0.0.1:\(silent.port)/x/y:1", "--store", tmp.path + "/s"],
            environment: ["KILN_CONNECT_TIMEOUT": "0.5", "DOCKER_CONFIG": tmp.path + "/docker"], check: false)
        #expect(!result.succeeded && result.status < 128)
        #expect(result.stderr.contains("connecting to 127.0.0.1:\(silent.port) timed out"), "\(result.stderr)")
        #expect(Date().timeIntervalSince(started) < 10)
    }

    /// The server stalls and trickles for far longer than any test runs, so only the limit under test can end
    /// each exchange, and its message says which. (No wall-clock bound here: the whole suite shares two cores
    /// and starves async tests for a minute at a time; the CLI tests measure time in their own process.)
    @Test func idleTimeoutEndsAStalledBodyAndOverallEndsATrickle() async throws {
        let server = try HostileServer(rules: [
            .init("GET", "^/stall", .stall, declared: 1000, seconds: 3600),
            .init("GET", "^/trickle", .trickle, declared: 100_000, seconds: 0.2),
        ])
        defer { server.stop() }
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

    @Test func errorsDropDependencySourcePaths() {
        let raw =
            "handshakeFailed(NIOSSL.BoringSSLError.sslError([Error: 268435703 error:100000f7:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER at /work/main/.build/checkouts/swift-nio-ssl/Sources/CNIOBoringSSL/ssl/tls_record.cc:127]))"
        let clean = HTTPTransport.clean(raw)
        #expect(!clean.contains("/work/main") && !clean.contains("tls_record.cc"), "\(clean)")
        #expect(clean.contains("WRONG_VERSION_NUMBER"))
    }

    @Test func aFullDiskIsADiskErrorNotANetworkOne() throws {
        let url = try #require(URL(string: "http://mirror.test/pool/a.deb"))
        let full = NSError(
            domain: NSCocoaErrorDomain, code: NSFileWriteOutOfSpaceError,
            userInfo: [NSUnderlyingErrorKey: NSError(domain: NSPOSIXErrorDomain, code: Int(ENOSPC))])
        let mapped = HTTPTransport.map(full, url: url, options: HTTPOptions())
        guard case .file = mapped else {
            Issue.record("a full disk was reported as \(mapped)")
            return
        }
        #expect(mapped.description.contains("disk is full"))
        #expect(!mapped.description.contains("cannot reach"))
        #expect(!mapped.isTransient)
    }
}
