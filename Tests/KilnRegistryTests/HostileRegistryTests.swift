import Foundation
import KilnHTTP
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnRegistry

/// The registry client against a hostile server (in front of a real docker-registry where a registry is
/// needed): one retry policy, Retry-After on uploads, the scheme probe, secrets, foreign token realms.
@Suite(.serialized) struct HostileRegistryTests {
    /// A store with one small image (two blobs and a manifest), made without the CLI.
    func smallImage(_ root: String) throws -> (OCILayout, Descriptor) {
        let layout = try OCILayout(root: root)
        let config = Data(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8)
        let layer = Data((0..<4096).map { UInt8($0 % 251) })
        try layout.writeBlob(config)
        try layout.writeBlob(layer)
        let manifest = try CanonicalJSON.encode(
            Manifest(
                config: Descriptor(mediaType: MediaType.imageConfig, bytes: config),
                layers: [Descriptor(mediaType: MediaType.layerTar, bytes: layer)]))
        try layout.writeBlob(manifest)
        return (layout, Descriptor(mediaType: MediaType.imageManifest, bytes: manifest))
    }

    func client(
        _ address: String, attempts: Int = 3, jobs: Int = 4, insecure: Set<String> = [],
        environment: [String: String] = [:]
    ) throws -> (RegistryClient, HTTPTransport) {
        let transport = try HTTPTransport(options: HTTPOptions(attempts: attempts, baseDelay: 0.01))
        let credentials = CredentialStore(environment: environment.merging(["HOME": "/nonexistent"]) { a, _ in a })
        let options = RegistryOptions(insecure: insecure, credentials: credentials, jobs: jobs)
        return (RegistryClient(registry: address, transport: transport, options: options), transport)
    }

    static let uploadStart = #"^/v2/.*/blobs/uploads/$"#

    @Test func aFailingUploadStartIsSentOncePerAttemptNotNested() async throws {
        try await withHostileRegistry(
            rules: [.init("POST", Self.uploadStart, .reply, status: 500, body: #"{"errors":[{"code":"UNKNOWN"}]}"#)],
            scratch: "kiln-hostile"
        ) { _, hostile, tmp in
            let (layout, image) = try smallImage(tmp.path + "/s")
            let (client, transport) = try client(hostile.address, attempts: 3, jobs: 1)
            await #expect(throws: RegistryError.self) {
                _ = try await Pusher(layout: layout, client: client).push([
                    .init(repository: "ns/small", descriptor: image, tags: ["1"])
                ])
            }
            await transport.shutdown()
            let posts = hostile.requests.filter { $0.method == "POST" }
            // Three attempts for the first blob, then the push stops; before, one upload sent up to 5 × 5 POSTs.
            #expect(posts.count == 3, "\(posts.count) upload starts")
            #expect(!hostile.requests.contains { $0.method == "PUT" && $0.path.contains("/manifests/") }, "no tag")
        }
    }

    @Test func retryAfterOnAnUploadIsHonoured() async throws {
        try await withHostileRegistry(
            rules: [.init("POST", Self.uploadStart, .reply, status: 429, headers: ["Retry-After": "1"], times: 1)],
            scratch: "kiln-hostile"
        ) { _, hostile, tmp in
            let (layout, image) = try smallImage(tmp.path + "/s")
            let (client, transport) = try client(hostile.address, jobs: 1)
            let pushed = try await Pusher(layout: layout, client: client).push([
                .init(repository: "ns/small", descriptor: image, tags: ["1"])
            ])
            await transport.shutdown()
            #expect(pushed.first?.digest == image.digest)
            let posts = hostile.requests.filter { $0.method == "POST" }.map(\.time)
            #expect(posts.count == 3, "one refused, then one per blob")
            if posts.count >= 2 { #expect(posts[1] - posts[0] >= 0.95, "waited for Retry-After: 1") }
        }
    }

    @Test func theSchemeProbeIsRetriedAndDecidedOnce() async throws {
        try await withHostileRegistry(
            rules: [.init("GET", #"^/v2/$"#, .reply, status: 503, times: 2)], scratch: "kiln-hostile"
        ) { _, hostile, tmp in
            let (layout, image) = try smallImage(tmp.path + "/s")
            let (client, transport) = try client(hostile.address, attempts: 4, insecure: [hostile.address])
            let pushed = try await Pusher(layout: layout, client: client).push([
                .init(repository: "ns/small", descriptor: image, tags: ["1"])
            ])
            await transport.shutdown()
            #expect(pushed.count == 1)
            // Two failures, then one success, shared by every parallel job: three probes in all.
            #expect(hostile.requests.filter { $0.path == "/v2/" }.count == 3)
        }
    }

    @Test func insecureMeansPlainHTTPAndAFailingRegistryIsNotTakenForTLS() async throws {
        try await withHostileServer(rules: [.init("GET", #"^/v2/"#, .reply, status: 500, body: "down")]) { hostile in
            for insecure in [Set([hostile.address]), []] {
                let (client, transport) = try client(hostile.address, attempts: 2, insecure: insecure)
                do {
                    _ = try await client.blobSize("x/y", .sha256(Data()))
                    Issue.record("a failing registry answered")
                } catch let error as RegistryError {
                    #expect(error.status == 500, "\(error)")
                    #expect(!error.description.contains("TLS"), "\(error)")
                }
                await transport.shutdown()
            }
            #expect(hostile.requests.allSatisfy { $0.path == "/v2/" })
        }
    }

    @Test func errorBodiesEchoingCredentialsAreRedacted() async throws {
        try await withHostileServer(rules: [
            .init("GET", #"^/v2/$"#, .reply, status: 401, headers: ["WWW-Authenticate": #"Basic realm="kiln""#]),
            .init(
                nil, #"^/v2/.+"#, .reply, status: 403,
                body: #"{"errors":[{"code":"DENIED","message":"denied: you sent {auth}"}]}"#),
        ]) { hostile in
            try await withTemporaryDirectory("kiln-hostile") { tmp in
                let password = "hunter2-secret"
                let encoded = Data("ci:\(password)".utf8).base64EncodedString()
                let environment = ["KILN_REGISTRY_USERNAME": "ci", "KILN_REGISTRY_PASSWORD": password]
                let (client, transport) = try client(hostile.address, environment: environment)
                do {
                    _ = try await client.manifest("ns/app", "1")
                    Issue.record("a 403 was accepted")
                } catch let error as RegistryError {
                    #expect(error.description.contains("denied: you sent Basic <redacted>"), "\(error)")
                    #expect(!error.description.contains(encoded) && !error.description.contains(password))
                }
                await transport.shutdown()
                #expect(hostile.requests.contains { $0.auth == "Basic \(encoded)" }, "the credential was sent")
                // The CLI, with and without --json.
                for json in [false, true] {
                    let result = try KilnBinary.run(
                        ["pull", "\(hostile.address)/ns/app:1", "--store", tmp.path + "/s"] + (json ? ["--json"] : []),
                        environment: environment.merging(["DOCKER_CONFIG": tmp.path + "/docker"]) { a, _ in a },
                        check: false)
                    #expect(!result.succeeded && result.status < 128)
                    let all = result.stdout + result.stderr
                    #expect(all.contains("<redacted>"), "\(all)")
                    #expect(!all.contains(encoded) && !all.contains(password), "secret printed with json=\(json)")
                }
            }
        }
    }

    @Test func basicCredentialsNeverGoToAForeignRealmOverPlainHTTP() async throws {
        try await withHostileServer(rules: [.init("GET", "^/token", .reply, status: 401, body: "no")]) { tokens in
            // The same address under another name (localhost), over plain HTTP: another host.
            try await withHostileServer(rules: [
                .init(
                    "GET", #"^/v2/"#, .reply, status: 401,
                    headers: ["WWW-Authenticate": #"Bearer realm="http://localhost:\#(tokens.port)/token",service="r""#]
                )
            ]) { foreign in
                // A realm on the registry's own host and port may have them.
                try await withHostileServer(rules: [
                    .init("GET", "^/token", .reply, body: #"{"token":"t0k"}"#),
                    .init(
                        "GET", #"^/v2/$"#, .reply, status: 401,
                        headers: ["WWW-Authenticate": #"Bearer realm="http://127.0.0.1:{port}/token",service="r""#]),
                    .init("HEAD", #"^/v2/.+"#, .reply, status: 404),
                ]) { own in
                    let environment = ["KILN_REGISTRY_USERNAME": "ci", "KILN_REGISTRY_PASSWORD": "pw-for-registry"]
                    let (refusing, transport) = try client(foreign.address, environment: environment)
                    do {
                        _ = try await refusing.blobSize("x/y", .sha256(Data()))
                        Issue.record("no token, yet it worked")
                    } catch let error as RegistryError {
                        #expect(error.description.contains("does not send credentials there"), "\(error)")
                    }
                    await transport.shutdown()
                    #expect(tokens.requests.count == 1)
                    #expect(
                        tokens.requests.allSatisfy { $0.auth == nil }, "no credentials to a foreign plain-HTTP realm")

                    let (trusted, ownTransport) = try client(own.address, environment: environment)
                    #expect(try await trusted.blobSize("x/y", .sha256(Data())) == nil)
                    await ownTransport.shutdown()
                    #expect(own.requests.first { $0.path.hasPrefix("/token") }?.auth?.hasPrefix("Basic ") == true)
                    #expect(own.requests.contains { $0.method == "HEAD" && $0.auth == "Bearer t0k" })
                }
            }
        }
    }

    /// A registry served over TLS whose token realm is plain HTTP on the same address (another port) gets no
    /// credentials: the client stops with an error naming the realm before sending anything there (it sent
    /// Basic credentials in cleartext, since the realm's host was the registry's).
    @Test func noCredentialsToAPlainHTTPRealmOfATLSRegistry() async throws {
        let tokens = try TokenServer(user: "ci", password: "pw-for-registry")
        defer { tokens.stop() }
        try await withRegistry(auth: .token(tokens), tls: true) { registry in
            let realm = "http://127.0.0.1:\(tokens.port)/token"
            let environment = [
                "KILN_REGISTRY_USERNAME": "ci", "KILN_REGISTRY_PASSWORD": "pw-for-registry", "HOME": "/nonexistent",
            ]
            let transport = try HTTPTransport(options: HTTPOptions(caFile: registry.caFile, attempts: 1))
            let client = RegistryClient(
                registry: registry.address, transport: transport,
                options: RegistryOptions(
                    caFile: registry.caFile, credentials: CredentialStore(environment: environment)))
            do {
                _ = try await client.blobSize("ns/app", .sha256(Data()))
                Issue.record("a token was obtained through a plain-HTTP realm")
            } catch let error as RegistryError {
                #expect(error.description.contains(realm), "\(error)")
                #expect(error.description.contains("plain HTTP"), "\(error)")
                #expect(!error.description.contains("pw-for-registry"))
            }
            await transport.shutdown()
            #expect(!tokens.log.contains("token for"), "the token server issued nothing: it got no credentials")
            // Over plain HTTP end to end (no TLS to lose), the same realm still gets them, as before.
            try await withRegistry(auth: .token(tokens)) { plain in
                let plainTransport = try HTTPTransport(options: HTTPOptions(attempts: 1))
                let plainClient = RegistryClient(
                    registry: plain.address, transport: plainTransport,
                    options: RegistryOptions(credentials: CredentialStore(environment: environment)))
                #expect(try await plainClient.blobSize("ns/app", .sha256(Data())) == nil)
                await plainTransport.shutdown()
                #expect(tokens.log.contains("token for"))
            }
        }
    }

    /// Upload locations carry the registry's `_state` token: it appears in no message, neither in the final
    /// error nor in the retry lines `kiln push --verbose` logs.
    @Test func uploadStateTokensAreRedactedFromErrorsAndRetryLogs() async throws {
        try await withHostileRegistry(rules: [.init("PUT", "/blobs/uploads/", .reset)], scratch: "kiln-hostile") {
            registry, hostile, tmp in
            let (layout, image) = try smallImage(tmp.path + "/s")
            try layout.tag(image, as: "small:1")
            func unredacted(_ text: String) -> Int {
                text.components(separatedBy: "_state=").count - text.components(separatedBy: "_state=<redacted>").count
            }
            let (client, transport) = try client(hostile.address, attempts: 2, jobs: 1)
            do {
                _ = try await Pusher(layout: layout, client: client).push([
                    .init(repository: "ns/small", descriptor: image, tags: ["1"])
                ])
                Issue.record("a push whose uploads are all reset succeeded")
            } catch {
                let text = "\(error)"
                #expect(text.contains("_state=<redacted>"), "the URL is there, its token is not: \(text)")
                #expect(unredacted(text) == 0, "\(text)")
            }
            await transport.shutdown()
            #expect(hostile.requests.contains { $0.path.contains("_state=") }, "the registry's locations carry _state")

            let result = try KilnBinary.run(
                [
                    "push", "small:1", "--to", "\(hostile.address)/ns", "--store", tmp.path + "/s", "--verbose",
                    "--jobs",
                    "1",
                ],
                environment: ["KILN_DEADLINE": "2", "DOCKER_CONFIG": tmp.path + "/docker"], check: false)
            #expect(!result.succeeded && result.status < 128)
            #expect(result.stderr.contains("attempt 1 of"), "--verbose logs the retries: \(result.stderr)")
            let all = result.stdout + result.stderr
            #expect(all.contains("_state=<redacted>"), "\(all)")
            #expect(unredacted(all) == 0, "\(all)")
        }
    }

    @Test func stallsTricklesAndLiesEndInBoundedTimeWithNothingStored() async throws {
        try await withHostileRegistry(scratch: "kiln-hostile") { registry, hostile, tmp in
            let (layout, image) = try smallImage(tmp.path + "/s")
            let (uploader, uploadTransport) = try client(registry.address)
            _ = try await Pusher(layout: layout, client: uploader).push([
                .init(repository: "ns/small", descriptor: image, tags: ["1"])
            ])
            await uploadTransport.shutdown()
            let layer = try layout.images(for: image)[0].manifest.layers[0]
            let blob = "^/v2/ns/small/blobs/\(layer.digest)"
            // Each case gets the limits that make its failure unambiguous whatever the load: the stall's idle limit
            // (2 s) is far below the whole exchange's (60 s), the trickle's whole exchange (3 s) far below its idle
            // limit (30 s), so a server thread starved for seconds under the full suite still trips the limit the
            // case is about (with 2 s idle against 0.2 s gaps and a 3 s deadline, a starved server tripped the
            // idle limit in CI).
            let cases: [(String, HostileServer.Rule, String, idle: Double, overall: Double)] = [
                ("stall", .init("GET", blob, .stall, declared: layer.size, seconds: 30), "waiting for data", 2, 60),
                ("trickle", .init("GET", blob, .trickle, declared: layer.size, seconds: 0.2), "whole exchange", 30, 3),
                (
                    "size lie", .init("GET", blob, .reply, body: "x", declared: 10_000_000_000),
                    "is 10000000000 bytes, expected 4096", 2, 3
                ),
                ("digest lie", .init("GET", blob, .corrupt), "has digest", 2, 3),
            ]
            for (name, rule, message, idle, overall) in cases {
                try hostile.setRules([rule])
                let transport = try HTTPTransport(
                    options: HTTPOptions(attempts: 1, idleTimeout: idle, overallTimeout: overall))
                let client = RegistryClient(registry: hostile.address, transport: transport, options: RegistryOptions())
                let target = try OCILayout(root: tmp.path + "/pulled-\(name.replacingOccurrences(of: " ", with: "-"))")
                let started = Date()
                do {
                    _ = try await Puller(layout: target, client: client).pull(
                        try Reference(parsing: "\(hostile.address)/ns/small:1"), platforms: nil)
                    Issue.record("\(name): the pull succeeded")
                } catch {
                    #expect("\(error)".contains(message), "\(name): \(error)")
                }
                await transport.shutdown()
                // The bound is loose because the full suite starves in-process async tests for seconds; the stall
                // itself lasts 30 s, the trickle as long as the body (far longer than this).
                #expect(Date().timeIntervalSince(started) < 45, "\(name) ended in bounded time")
                #expect(!target.hasBlob(layer.digest), "\(name): nothing stored")
                #expect(try target.tags().isEmpty)
            }
            // The CLI: KILN_TIMEOUT and --timeout set the idle limit, and the message says how to change it.
            try hostile.setRules([.init("GET", blob, .stall, declared: layer.size, seconds: 30)])
            for (extra, environment) in [([String](), ["KILN_TIMEOUT": "1"]), (["--timeout", "1"], [:])] {
                // Attempts of one second each, with back-off between them, within a 4 s request deadline.
                let environment = environment.merging(["KILN_DEADLINE": "4"]) { a, _ in a }
                let started = Date()
                let result = try KilnBinary.run(
                    ["pull", "\(hostile.address)/ns/small:1", "--store", tmp.path + "/cli"] + extra,
                    environment: environment.merging(["DOCKER_CONFIG": tmp.path + "/docker"]) { a, _ in a },
                    check: false)
                #expect(!result.succeeded && result.status < 128)
                #expect(
                    result.stderr.contains("timed out (1 s)") && result.stderr.contains("KILN_TIMEOUT"),
                    "\(result.stderr)")
                #expect(Date().timeIntervalSince(started) < 20)
            }
        }
    }
}
