import Foundation
import KilnTestSupport
import Testing

/// Credentials, private CAs and proxies as `kiln push`, `kiln pull` and `kiln login` take them from flags and the
/// environment, against real docker-registry, token server and tinyproxy processes.
@Suite(.serialized) struct RegistryAuthTests {
    @Test func basicAuthRightAndWrongPassword() async throws {
        try await withRegistry(auth: .basic(user: "ci", password: "s3cret-pw"), scratch: "kiln-push") { registry, tmp in
            let store = try await FixtureStore.golden(in: tmp)
            let config = tmp.path + "/docker"
            let wrong = try PushCommand.run(
                store, to: registry.address,
                environment: [
                    "DOCKER_CONFIG": config, "KILN_REGISTRY_USERNAME": "ci", "KILN_REGISTRY_PASSWORD": "nope",
                ],
                check: false
            ).0
            #expect(!wrong.succeeded)
            #expect(wrong.stderr.contains("HTTP 401"))
            #expect(wrong.stderr.contains("kiln login \(registry.address)"))
            #expect(!wrong.stderr.contains("nope") && !wrong.stdout.contains("nope"), "secrets never printed")
            // kiln login checks the password first: a wrong one fails naming the registry and saves nothing.
            let refused = try Shell.run(
                [KilnBinary.path, "login", registry.address, "-u", "ci", "--password-stdin"],
                environment: ["DOCKER_CONFIG": config], check: false, stdin: "nope\n")
            #expect(refused.status == 2, "\(refused.stderr)")
            #expect(refused.stderr.contains("logging in failed at \(registry.address)"), "\(refused.stderr)")
            #expect(refused.stderr.contains("nothing was saved"))
            #expect(!refused.stderr.contains("nope") && !refused.stdout.contains("nope"), "secrets never printed")
            #expect(!FileManager.default.fileExists(atPath: config + "/config.json"))
            // kiln login stores the right one; push then succeeds.
            try Shell.run(
                [KilnBinary.path, "login", registry.address, "-u", "ci", "--password-stdin"],
                environment: ["DOCKER_CONFIG": config],
                stdin: "s3cret-pw\n")
            let (ok, pushed) = try PushCommand.run(store, to: registry.address, environment: ["DOCKER_CONFIG": config])
            #expect(ok.succeeded && pushed.count == 2)
            try Shell.run(
                [
                    "skopeo", "inspect", "--tls-verify=false", "--creds", "ci:s3cret-pw",
                    "docker://\(registry.address)/golden-base:1.0.0",
                ])
            try KilnBinary.run(["logout", registry.address], environment: ["DOCKER_CONFIG": config])
            #expect(
                !(try PushCommand.run(store, to: registry.address, environment: ["DOCKER_CONFIG": config], check: false)
                    .0.succeeded))
        }
    }

    @Test func tlsWithPrivateCA() async throws {
        try await withRegistry(tls: true, scratch: "kiln-push") { registry, tmp in
            let store = try await FixtureStore.golden(in: tmp)
            let refused = try PushCommand.run(store, to: registry.address, check: false).0
            #expect(!refused.succeeded)
            #expect(refused.stderr.contains("TLS"), "\(refused.stderr)")
            #expect(refused.stderr.contains("--ca-file"))
            let (ok, pushed) = try PushCommand.run(store, to: registry.address, ["--ca-file", registry.caFile!])
            #expect(ok.succeeded && pushed.count == 2)
            try Shell.run([
                "skopeo", "inspect", "--cert-dir", tmp.path + "/none", "--tls-verify=false",
                "docker://\(registry.address)/golden-app:stable",
            ])
        }
    }

    @Test func bearerTokenFlow() async throws {
        try await withTokenRegistry(user: "ci", password: "tok-pw", scratch: "kiln-push") { tokens, registry, tmp in
            let store = try await FixtureStore.golden(in: tmp)
            let env = [
                "DOCKER_CONFIG": tmp.path + "/docker", "KILN_REGISTRY_USERNAME": "ci",
                "KILN_REGISTRY_PASSWORD": "tok-pw",
            ]
            let (ok, pushed) = try PushCommand.run(store, to: "\(registry.address)/team", environment: env)
            #expect(ok.succeeded && pushed.count == 2, "\(ok.stderr)")
            #expect(tokens.log.contains("repository:team/golden-app:pull,push"))
            try KilnBinary.run(
                ["pull", "\(registry.address)/team/golden-base:1.0.0", "--store", tmp.path + "/pulled"],
                environment: env)
            var bad = env
            bad["KILN_REGISTRY_PASSWORD"] = "wrong"
            let refused = try PushCommand.run(store, to: "\(registry.address)/team", environment: bad, check: false).0
            #expect(!refused.succeeded && refused.stderr.contains("token"))
            // kiln login exchanges the password for a token before saving it.
            let config = tmp.path + "/login"
            let wrongLogin = try Shell.run(
                [KilnBinary.path, "login", registry.address, "-u", "ci", "--password-stdin"],
                environment: ["DOCKER_CONFIG": config], check: false, stdin: "wrong\n")
            #expect(wrongLogin.status == 2 && wrongLogin.stderr.contains("nothing was saved"), "\(wrongLogin.stderr)")
            #expect(!FileManager.default.fileExists(atPath: config + "/config.json"))
            try Shell.run(
                [KilnBinary.path, "login", registry.address, "-u", "ci", "--password-stdin"],
                environment: ["DOCKER_CONFIG": config], stdin: "tok-pw\n")
            let (again, _) = try PushCommand.run(
                store, to: "\(registry.address)/team", environment: ["DOCKER_CONFIG": config])
            #expect(again.succeeded, "\(again.stderr)")
        }
    }

    /// HTTP_PROXY / HTTPS_PROXY / NO_PROXY with a real proxy (tinyproxy): tunnelled through CONNECT, NO_PROXY
    /// straight to the registry.
    @Test func pushAndPullThroughAProxy() async throws {
        try await withRegistry(scratch: "kiln-push") { registry, tmp in
            try await withRegistry(tls: true) { secure in
                try await withProxy(user: "ops", password: "pr0xy-pw", connectPorts: [registry.port, secure.port]) {
                    proxy in
                    let store = try await FixtureStore.golden(in: tmp)
                    let viaProxy = ["HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url]
                    let (ok, pushed) = try PushCommand.run(store, to: registry.address, environment: viaProxy)
                    #expect(ok.succeeded && pushed.count == 2, "\(ok.stderr)")
                    // AsyncHTTPClient tunnels plain HTTP with CONNECT too.
                    let tunnel = "CONNECT \(registry.address) "
                    let pushedThrough = proxy.requests.filter { $0.hasPrefix(tunnel) }.count
                    #expect(pushedThrough > 0, "\(proxy.requests)")
                    #expect(!ok.stderr.contains("pr0xy-pw") && !ok.stdout.contains("pr0xy-pw"), "secrets never printed")
                    try KilnBinary.run(
                        ["pull", "\(registry.address)/golden-base:1.0.0", "--store", tmp.path + "/pulled"],
                        environment: viaProxy)
                    #expect(proxy.requests.filter { $0.hasPrefix(tunnel) }.count > pushedThrough)
                    // NO_PROXY=127.0.0.1: the proxy sees none of it.
                    let before = proxy.requests.count
                    var bypass = viaProxy
                    bypass["NO_PROXY"] = "127.0.0.1"
                    try KilnBinary.run(
                        ["pull", "\(registry.address)/golden-app:stable", "--store", tmp.path + "/direct"],
                        environment: bypass)
                    #expect(proxy.requests.count == before, "\(proxy.requests.suffix(3))")
                    // HTTPS tunnels through CONNECT; TLS is still checked end to end against the registry's CA.
                    let (tls, _) = try PushCommand.run(
                        store, to: secure.address, ["--ca-file", secure.caFile!], environment: viaProxy)
                    #expect(tls.succeeded, "\(tls.stderr)")
                    #expect(proxy.requests.contains { $0.hasPrefix("CONNECT \(secure.address)") }, "\(proxy.requests)")
                }
            }
        }
    }

    /// podman's auth files: `REGISTRY_AUTH_FILE`, then `$XDG_RUNTIME_DIR/containers/auth.json`, then docker's.
    @Test func credentialsFromPodmanAuthFiles() async throws {
        try await withRegistry(auth: .basic(user: "ci", password: "pod-pw"), scratch: "kiln-push") { registry, tmp in
            let store = try await FixtureStore.golden(in: tmp)
            func authFile(_ path: String, password: String) throws {
                let auth = Data("ci:\(password)".utf8).base64EncodedString()
                _ = try tmp.write(path, #"{"auths": {"\#(registry.address)": {"auth": "\#(auth)"}}}"#)
            }
            let docker = tmp.path + "/docker"
            try authFile("runtime/containers/auth.json", password: "pod-pw")
            try authFile("explicit.json", password: "pod-pw")
            try authFile("wrong.json", password: "stale")
            let runtime = ["DOCKER_CONFIG": docker, "XDG_RUNTIME_DIR": tmp.path + "/runtime"]
            #expect(try PushCommand.run(store, to: registry.address, environment: runtime).0.succeeded)
            let explicit = ["DOCKER_CONFIG": docker, "REGISTRY_AUTH_FILE": tmp.path + "/explicit.json"]
            #expect(try PushCommand.run(store, to: registry.address, environment: explicit).0.succeeded)
            // REGISTRY_AUTH_FILE comes first: its stale entry wins over the runtime file's right one, and back.
            var both = runtime
            both["REGISTRY_AUTH_FILE"] = tmp.path + "/wrong.json"
            let stale = try PushCommand.run(store, to: registry.address, environment: both, check: false).0
            #expect(!stale.succeeded && stale.stderr.contains("HTTP 401"), "\(stale.stderr)")
            try authFile("runtime/containers/auth.json", password: "stale")
            both["REGISTRY_AUTH_FILE"] = tmp.path + "/explicit.json"
            #expect(try PushCommand.run(store, to: registry.address, environment: both).0.succeeded)
            // With REGISTRY_AUTH_FILE set, kiln login writes there (as podman does), not to docker's config.
            let written = tmp.path + "/written.json"
            try Shell.run(
                [KilnBinary.path, "login", registry.address, "-u", "ci", "--password-stdin"],
                environment: ["DOCKER_CONFIG": docker, "REGISTRY_AUTH_FILE": written], stdin: "pod-pw\n")
            #expect(FileManager.default.fileExists(atPath: written))
            #expect(!FileManager.default.fileExists(atPath: docker + "/config.json"))
            #expect(
                try PushCommand.run(
                    store, to: registry.address, environment: ["DOCKER_CONFIG": docker, "REGISTRY_AUTH_FILE": written]
                )
                .0.succeeded)
        }
    }
}
