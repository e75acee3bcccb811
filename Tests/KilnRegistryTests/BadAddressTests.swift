import Foundation
import KilnHTTP
import KilnOCI
import KilnTestSupport
import Testing

@testable import KilnRegistry

/// Registry addresses from users: each of these crashed Kiln (exit 132, a force unwrap) before any request.
/// Now each is a clear error naming the bad part, with an exit code under 128, and no connection is tried.
@Suite struct BadAddressTests {
    func kiln(_ arguments: [String], in tmp: TemporaryDirectory) throws -> CommandResult {
        try KilnBinary.run(
            arguments, environment: ["DOCKER_CONFIG": tmp.path + "/docker"], directory: tmp.path, check: false)
    }

    func expectClearFailure(_ result: CommandResult, mentions: String, _ what: String) {
        #expect(result.status > 0 && result.status < 128, "\(what): exit \(result.status)")
        #expect(result.stderr.contains(mentions), "\(what): \(result.stderr)")
        #expect(!result.stderr.contains("Fatal error"), "\(what) crashed")
    }

    @Test func pullWithAPortOutOfRange() async throws {
        try await withTemporaryDirectory("kiln-bad") { tmp in
            let result = try kiln(["pull", "127.0.0.1:99999/x/y:1", "--store", tmp.path + "/s"], in: tmp)
            expectClearFailure(result, mentions: "port '99999' is not a number from 1 to 65535", "pull")
        }
    }

    @Test func pushToANameWithASpace() async throws {
        try await withTemporaryDirectory("kiln-bad") { tmp in
            let result = try kiln(["push", "--to", "a b/ns", "--store", tmp.path + "/s"], in: tmp)
            expectClearFailure(result, mentions: "'a b' is not a registry address", "push --to 'a b/ns'")
            let upper = try kiln(["push", "--to", "127.0.0.1:5000/Team", "--store", tmp.path + "/s"], in: tmp)
            expectClearFailure(
                upper, mentions: "namespace 'Team' must be lower-case", "push to an upper-case namespace")
        }
    }

    @Test func verifyWithAPortOutOfRange() async throws {
        try await withTemporaryDirectory("kiln-bad") { tmp in
            let result = try kiln(["verify", "127.0.0.1:99999/x/y:1"], in: tmp)
            expectClearFailure(result, mentions: "port '99999'", "verify")
        }
    }

    @Test func rollbackToABadRegistry() async throws {
        try await withTemporaryDirectory("kiln-bad") { tmp in
            let result = try kiln(["rollback", "1.0.0", "--to", "127.0.0.1:99999/ns"], in: tmp)
            expectClearFailure(result, mentions: "port '99999'", "rollback")
            let spaced = try kiln(["rollback", "1.0.0", "--to", "a b/ns"], in: tmp)
            expectClearFailure(spaced, mentions: "'a b' is not a registry address", "rollback --to 'a b/ns'")
        }
    }

    @Test func recipeBaseWithABadPort() async throws {
        try await withTemporaryDirectory("kiln-bad") { tmp in
            try tmp.write(
                "b.yaml",
                """
                name: child
                version: "1"
                base: 127.0.0.1:99999/x/y:1@sha256:\(String(repeating: "0", count: 64))
                layers:
                  - name: extra
                    files: [{path: /etc/child, content: "child\\n"}]
                """)
            let result = try kiln(["build", tmp.path + "/b.yaml", "--store", tmp.path + "/s"], in: tmp)
            expectClearFailure(result, mentions: "b.yaml:3:", "a recipe base with a bad port")
            #expect(result.stderr.contains("port '99999'"))
        }
    }

    @Test func addressGrammar() throws {
        for good in ["registry.example.com", "127.0.0.1:5000", "localhost:1", "[::1]:5000", "a-b.c:65535"] {
            #expect(throws: Never.self, "\(good)") { try Reference.validateRegistry(good) }
        }
        for bad in ["a b", "host:0", "host:65536", "host:x", "-host", "host..com", "[::1", "[zz]:5", "host:5000/x", ""]
        {
            #expect(throws: Reference.ParseError.self, "\(bad)") { try Reference.validateRegistry(bad) }
        }
    }

    /// The client refuses a bad address itself too (callers that skip `Reference`), before any request.
    @Test func theClientRefusesABadAddress() async throws {
        let transport = try HTTPTransport()
        let client = RegistryClient(registry: "127.0.0.1:99999", transport: transport, options: RegistryOptions())
        await #expect(throws: Reference.ParseError.self) { _ = try await client.blobSize("x/y", .sha256(Data())) }
        await transport.shutdown()
    }

    @Test func aClosedPortFailsWithinTwoSecondsNamingTheHost() async throws {
        try await withTemporaryDirectory("kiln-bad") { tmp in
            let port = try freePort()
            let started = Date()
            let result = try kiln(["pull", "127.0.0.1:\(port)/x/y:1", "--store", tmp.path + "/s"], in: tmp)
            #expect(Date().timeIntervalSince(started) < 2)
            expectClearFailure(result, mentions: "127.0.0.1:\(port) refused the connection", "pull from a closed port")
            #expect(!result.stderr.contains("--insecure"), "no misleading hint")
        }
    }
}
