import Foundation
import KilnHTTP
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnRegistry

/// Push and pull against real docker-registry processes, read back by skopeo and podman.
@Suite(.serialized) struct PushPullTests {
    static let golden = KilnBinary.packageRoot + "/Tests/Fixtures/golden"

    /// A store with the golden images built by the CLI.
    func goldenStore() throws -> (TemporaryDirectory, String) {
        let tmp = try TemporaryDirectory("kiln-push")
        try KilnBinary.run(
            ["build", Self.golden, "--store", tmp.path + "/images"], environment: ["SOURCE_DATE_EPOCH": ""])
        return (tmp, tmp.path + "/images")
    }

    struct Pushed: Decodable {
        var reference: String
        var repository: String
        var digest: String
        var tags: [String]
    }

    /// What `kiln push --json` prints: the images pushed.
    struct PushReport: Decodable {
        var images: [Pushed]
    }

    func push(
        _ store: String, to: String, _ extra: [String] = [], images: [String] = [], environment: [String: String] = [:],
        check: Bool = true
    ) throws
        -> (CommandResult, [Pushed])
    {
        let result = try KilnBinary.run(
            ["push"] + images + ["--to", to, "--store", store, "--json"] + extra, environment: environment, check: check
        )
        let pushed =
            result.succeeded ? try JSONDecoder().decode(PushReport.self, from: Data(result.stdout.utf8)).images : []
        return (result, pushed)
    }

    func localDigests(_ store: String) throws -> [String: String] {
        let layout = try OCILayout(root: store)
        return Dictionary(
            uniqueKeysWithValues: try layout.tags().map { ($0.reference, $0.descriptor.digest.description) })
    }

    @Test func pushThenReadBackWithSkopeoKilnPullAndPodman() throws {
        let registry = try RegistryServer()
        let (tmp, store) = try goldenStore()
        let podman = try Podman()
        defer {
            registry.stop()
            tmp.remove()
            podman.cleanUp()
        }
        // A runnable image too.
        try Shell.run(["cp", "/bin/busybox", tmp.path + "/busybox"])
        try tmp.write(
            "run.yaml",
            """
            name: runnable
            version: "1"
            layers:
              - name: bin
                add: [{src: busybox, to: /bin/busybox}]
            entrypoint: [/bin/busybox, echo]
            cmd: [pulled and running]
            """)
        try KilnBinary.run(["build", tmp.path + "/run.yaml", "--store", store])
        let local = try localDigests(store)
        let (_, pushed) = try push(store, to: "\(registry.address)/komodo")
        #expect(Set(pushed.map(\.repository)) == ["komodo/golden-app", "komodo/golden-base", "komodo/runnable"])
        let app = try #require(pushed.first { $0.repository == "komodo/golden-app" })
        #expect(app.tags == ["2.0.0", "stable"])
        #expect(app.reference == "\(registry.address)/komodo/golden-app@\(local["golden-app:2.0.0"]!)")

        // skopeo reads what the registry serves: the same digests `kiln images` shows.
        for (reference, digest) in local {
            let parts = reference.split(separator: ":")
            let inspect = try Shell.run([
                "skopeo", "inspect", "--raw", "--tls-verify=false",
                "docker://\(registry.address)/komodo/\(parts[0]):\(parts[1])",
            ]).stdout
            #expect(Digest.sha256(Data(inspect.utf8)).description == digest, "\(reference)")
        }
        // skopeo copies it back into a layout with the same digest.
        try Shell.run([
            "skopeo", "copy", "--src-tls-verify=false", "docker://\(registry.address)/komodo/golden-app:2.0.0",
            "oci:\(tmp.path)/copy:app",
        ])
        #expect(
            try Oracles.skopeoInspect(layout: tmp.path + "/copy", reference: "app")["Digest"] as? String
                == local["golden-app:2.0.0"])
        // kiln pull into an empty store gives the same digest, and umoci accepts the result.
        try KilnBinary.run([
            "pull", "\(registry.address)/komodo/golden-app:2.0.0", "--store", tmp.path + "/pulled", "--tag",
            "app:pulled",
        ])
        #expect(try localDigests(tmp.path + "/pulled")["app:pulled"] == local["golden-app:2.0.0"])
        try Shell.run(["umoci", "unpack", "--image", "\(tmp.path)/pulled:app:pulled", tmp.path + "/bundle"])
        // podman pulls from the registry and runs it.
        let out = try podman.run("\(registry.address)/komodo/runnable:1", extra: ["--tls-verify=false"]).stdout
        #expect(out == "pulled and running\n")
    }

    @Test func rePushUploadsNothingAndSharedLayersMoveOnce() async throws {
        let registry = try RegistryServer()
        let (tmp, store) = try goldenStore()
        defer {
            registry.stop()
            tmp.remove()
        }
        let layout = try OCILayout(root: store)
        let items = try layout.tags().filter { $0.tag != "stable" }.map {
            Pusher.Item(repository: "ns/" + $0.name, descriptor: $0.descriptor, tags: [$0.tag])
        }
        let events = EventLog()
        func pushOnce() async throws -> Int64 {
            let transport = try HTTPTransport()
            let client = RegistryClient(registry: registry.address, transport: transport, options: RegistryOptions())
            _ = try await Pusher(layout: layout, client: client, events: events.record).push(items)
            await transport.shutdown()
            return client.uploadedBytes
        }
        let first = try await pushOnce()
        // golden-app shares golden-base's two layers: they are mounted (or found), never uploaded twice.
        let base = try layout.images(for: try layout.resolve("golden-base:1.0.0"))[0].manifest.layers
        for layer in base {
            #expect(events.uploads(of: layer.digest) == 1, "shared layer \(layer.digest) uploaded once")
        }
        #expect(events.mounts > 0)
        let uploadsBefore = registry.uploadRequests
        events.clear()
        let second = try await pushOnce()
        #expect(first > 0)
        #expect(second == 0, "a re-push uploads no blob bytes")
        #expect(events.uploadCount == 0)
        #expect(registry.uploadRequests == uploadsBefore, "the registry saw no new uploads")
        #expect(events.manifestPushes == 0, "a re-push sends only HEAD requests")
    }

    /// A fleet push is one graph (as go-containerregistry's MultiWrite): each blob shared by several images is
    /// uploaded once and mounted elsewhere, and no manifest is written before every blob of the fleet is in.
    @Test func fleetPushUploadsEachSharedBlobOnceAndCommitsManifestsAfterAllBlobs() async throws {
        let registry = try RegistryServer()
        let (tmp, store) = try goldenStore()
        defer {
            registry.stop()
            tmp.remove()
        }
        let layout = try OCILayout(root: store)
        var items: [Pusher.Item] = []
        for (digest, group) in Dictionary(grouping: try layout.tags(), by: \.descriptor.digest).sorted(by: {
            $0.key < $1.key
        }) {
            var descriptor = group[0].descriptor
            descriptor.annotations = nil
            items.append(
                .init(
                    repository: "fleet/" + group[0].name, descriptor: descriptor, tags: ["\(digest.encoded.prefix(8))"])
            )
        }
        // The same application under a second name: every one of its blobs is shared.
        let app = try layout.resolve("golden-app:2.0.0")
        items.append(.init(repository: "fleet/golden-app-copy", descriptor: app, tags: ["2.0.0"]))
        #expect(items.count >= 3)
        let transport = try HTTPTransport()
        let client = RegistryClient(
            registry: registry.address, transport: transport, options: RegistryOptions(jobs: 4))
        let events = EventLog()
        let pushed = try await Pusher(layout: layout, client: client, events: events.record).push(items)
        await transport.shutdown()
        #expect(pushed.map(\.digest) == items.map(\.descriptor.digest))

        var blobs = Set<Digest>()
        for item in items {
            for image in try layout.images(for: item.descriptor) {
                blobs.formUnion([image.manifest.config.digest] + image.manifest.layers.map(\.digest))
            }
        }
        for blob in blobs {
            #expect(registry.uploads(of: blob.description) == 1, "\(blob) uploaded once for the whole fleet")
        }
        #expect(events.mounts > 0)
        let requests = registry.requests
        let lastBlob = requests.lastIndex { $0.contains("/blobs/uploads/") }
        let firstManifest = requests.firstIndex { $0.hasPrefix("PUT ") && $0.contains("/manifests/") }
        #expect(lastBlob != nil && firstManifest != nil)
        if let lastBlob, let firstManifest {
            #expect(lastBlob < firstManifest, "every blob of the fleet is in before the first manifest")
        }
        for item in items {
            #expect(
                try Oracles.remoteDigest("\(registry.address)/\(item.repository):\(item.tags[0])")
                    == item.descriptor.digest.description)
        }
    }

    @Test func registryBasePinnedByDigestIsPulledOnceAndShared() throws {
        let registry = try RegistryServer()
        let (tmp, store) = try goldenStore()
        defer {
            registry.stop()
            tmp.remove()
        }
        let (_, pushed) = try push(store, to: "\(registry.address)/up", images: ["golden-base"])
        let base = try #require(pushed.first)
        try tmp.write(
            "child.yaml",
            """
            name: child
            version: "1"
            base: \(registry.address)/up/golden-base:1.0.0@\(base.digest)
            layers:
              - name: extra
                files: [{path: /etc/child, content: "child\\n"}]
            """)
        let fresh = tmp.path + "/fresh"
        try KilnBinary.run(["build", tmp.path + "/child.yaml", "--store", fresh])
        let layout = try OCILayout(root: fresh)
        let child = try layout.images(for: try layout.resolve("child:1"))[0]
        let parent = try OCILayout(root: store).images(for: try OCILayout(root: store).resolve("golden-base:1.0.0"))[0]
        #expect(Array(child.manifest.layers.prefix(parent.manifest.layers.count)) == parent.manifest.layers)
        #expect(child.manifest.annotations?["org.opencontainers.image.base.digest"] == base.digest)
        #expect(
            child.manifest.annotations?["org.opencontainers.image.base.name"]
                == "\(registry.address)/up/golden-base:1.0.0")
        // The second build needs no registry: the base is in the store (and gc keeps it).
        registry.stop()
        try KilnBinary.run(["gc", "--grace", "0", "--store", fresh])
        try KilnBinary.run(["build", tmp.path + "/child.yaml", "--store", fresh])
        try Shell.run(["umoci", "unpack", "--image", "\(fresh):child:1", tmp.path + "/bundle"])
        #expect(FileManager.default.fileExists(atPath: tmp.path + "/bundle/rootfs/usr/local/bin/hello"))
    }

    @Test func basicAuthRightAndWrongPassword() throws {
        let registry = try RegistryServer(auth: .basic(user: "ci", password: "s3cret-pw"))
        let (tmp, store) = try goldenStore()
        defer {
            registry.stop()
            tmp.remove()
        }
        let config = tmp.path + "/docker"
        let wrong = try push(
            store, to: registry.address,
            environment: ["DOCKER_CONFIG": config, "KILN_REGISTRY_USERNAME": "ci", "KILN_REGISTRY_PASSWORD": "nope"],
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
        let (ok, pushed) = try push(store, to: registry.address, environment: ["DOCKER_CONFIG": config])
        #expect(ok.succeeded && pushed.count == 2)
        try Shell.run(
            [
                "skopeo", "inspect", "--tls-verify=false", "--creds", "ci:s3cret-pw",
                "docker://\(registry.address)/golden-base:1.0.0",
            ])
        try KilnBinary.run(["logout", registry.address], environment: ["DOCKER_CONFIG": config])
        #expect(
            !(try push(store, to: registry.address, environment: ["DOCKER_CONFIG": config], check: false).0.succeeded))
    }

    @Test func tlsWithPrivateCA() throws {
        let registry = try RegistryServer(tls: true)
        let (tmp, store) = try goldenStore()
        defer {
            registry.stop()
            tmp.remove()
        }
        let refused = try push(store, to: registry.address, check: false).0
        #expect(!refused.succeeded)
        #expect(refused.stderr.contains("TLS"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--ca-file"))
        let (ok, pushed) = try push(store, to: registry.address, ["--ca-file", registry.caFile!])
        #expect(ok.succeeded && pushed.count == 2)
        try Shell.run([
            "skopeo", "inspect", "--cert-dir", tmp.path + "/none", "--tls-verify=false",
            "docker://\(registry.address)/golden-app:stable",
        ])
    }

    @Test func bearerTokenFlow() throws {
        let tokens = try TokenServer(user: "ci", password: "tok-pw")
        let registry = try RegistryServer(auth: .token(tokens))
        let (tmp, store) = try goldenStore()
        defer {
            registry.stop()
            tokens.stop()
            tmp.remove()
        }
        let env = [
            "DOCKER_CONFIG": tmp.path + "/docker", "KILN_REGISTRY_USERNAME": "ci", "KILN_REGISTRY_PASSWORD": "tok-pw",
        ]
        let (ok, pushed) = try push(store, to: "\(registry.address)/team", environment: env)
        #expect(ok.succeeded && pushed.count == 2, "\(ok.stderr)")
        #expect(tokens.log.contains("repository:team/golden-app:pull,push"))
        try KilnBinary.run(
            ["pull", "\(registry.address)/team/golden-base:1.0.0", "--store", tmp.path + "/pulled"], environment: env)
        var bad = env
        bad["KILN_REGISTRY_PASSWORD"] = "wrong"
        let refused = try push(store, to: "\(registry.address)/team", environment: bad, check: false).0
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
        let (again, _) = try push(store, to: "\(registry.address)/team", environment: ["DOCKER_CONFIG": config])
        #expect(again.succeeded, "\(again.stderr)")
    }

    /// HTTP_PROXY / HTTPS_PROXY / NO_PROXY with a real proxy (tinyproxy): tunnelled through CONNECT, NO_PROXY
    /// straight to the registry.
    @Test func pushAndPullThroughAProxy() throws {
        let registry = try RegistryServer()
        let secure = try RegistryServer(tls: true)
        let proxy = try ProxyServer(
            user: "ops", password: "pr0xy-pw", connectPorts: [registry.port, secure.port])
        let (tmp, store) = try goldenStore()
        defer {
            registry.stop()
            secure.stop()
            proxy.stop()
            tmp.remove()
        }
        let viaProxy = ["HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url]
        let (ok, pushed) = try push(store, to: registry.address, environment: viaProxy)
        #expect(ok.succeeded && pushed.count == 2, "\(ok.stderr)")
        // AsyncHTTPClient tunnels plain HTTP with CONNECT too.
        let tunnel = "CONNECT \(registry.address) "
        let pushedThrough = proxy.requests.filter { $0.hasPrefix(tunnel) }.count
        #expect(pushedThrough > 0, "\(proxy.requests)")
        #expect(!ok.stderr.contains("pr0xy-pw") && !ok.stdout.contains("pr0xy-pw"), "secrets never printed")
        try KilnBinary.run(
            ["pull", "\(registry.address)/golden-base:1.0.0", "--store", tmp.path + "/pulled"], environment: viaProxy)
        #expect(proxy.requests.filter { $0.hasPrefix(tunnel) }.count > pushedThrough)
        // NO_PROXY=127.0.0.1: the proxy sees none of it.
        let before = proxy.requests.count
        var bypass = viaProxy
        bypass["NO_PROXY"] = "127.0.0.1"
        try KilnBinary.run(
            ["pull", "\(registry.address)/golden-app:stable", "--store", tmp.path + "/direct"], environment: bypass)
        #expect(proxy.requests.count == before, "\(proxy.requests.suffix(3))")
        // HTTPS tunnels through CONNECT; TLS is still checked end to end against the registry's CA.
        let (tls, _) = try push(store, to: secure.address, ["--ca-file", secure.caFile!], environment: viaProxy)
        #expect(tls.succeeded, "\(tls.stderr)")
        #expect(proxy.requests.contains { $0.hasPrefix("CONNECT \(secure.address)") }, "\(proxy.requests)")
    }

    /// podman's auth files: `REGISTRY_AUTH_FILE`, then `$XDG_RUNTIME_DIR/containers/auth.json`, then docker's.
    @Test func credentialsFromPodmanAuthFiles() throws {
        let registry = try RegistryServer(auth: .basic(user: "ci", password: "pod-pw"))
        let (tmp, store) = try goldenStore()
        defer {
            registry.stop()
            tmp.remove()
        }
        func authFile(_ path: String, password: String) throws {
            let auth = Data("ci:\(password)".utf8).base64EncodedString()
            _ = try tmp.write(path, #"{"auths": {"\#(registry.address)": {"auth": "\#(auth)"}}}"#)
        }
        let docker = tmp.path + "/docker"
        try authFile("runtime/containers/auth.json", password: "pod-pw")
        try authFile("explicit.json", password: "pod-pw")
        try authFile("wrong.json", password: "stale")
        let runtime = ["DOCKER_CONFIG": docker, "XDG_RUNTIME_DIR": tmp.path + "/runtime"]
        #expect(try push(store, to: registry.address, environment: runtime).0.succeeded)
        let explicit = ["DOCKER_CONFIG": docker, "REGISTRY_AUTH_FILE": tmp.path + "/explicit.json"]
        #expect(try push(store, to: registry.address, environment: explicit).0.succeeded)
        // REGISTRY_AUTH_FILE comes first: its stale entry wins over the runtime file's right one, and back.
        var both = runtime
        both["REGISTRY_AUTH_FILE"] = tmp.path + "/wrong.json"
        let stale = try push(store, to: registry.address, environment: both, check: false).0
        #expect(!stale.succeeded && stale.stderr.contains("HTTP 401"), "\(stale.stderr)")
        try authFile("runtime/containers/auth.json", password: "stale")
        both["REGISTRY_AUTH_FILE"] = tmp.path + "/explicit.json"
        #expect(try push(store, to: registry.address, environment: both).0.succeeded)
        // With REGISTRY_AUTH_FILE set, kiln login writes there (as podman does), not to docker's config.
        let written = tmp.path + "/written.json"
        try Shell.run(
            [KilnBinary.path, "login", registry.address, "-u", "ci", "--password-stdin"],
            environment: ["DOCKER_CONFIG": docker, "REGISTRY_AUTH_FILE": written], stdin: "pod-pw\n")
        #expect(FileManager.default.fileExists(atPath: written))
        #expect(!FileManager.default.fileExists(atPath: docker + "/config.json"))
        #expect(
            try push(
                store, to: registry.address, environment: ["DOCKER_CONFIG": docker, "REGISTRY_AUTH_FILE": written]
            )
            .0.succeeded)
    }

    @Test func faultsAreSurvivedOrReportedWithoutDanglingTags() async throws {
        let registry = try RegistryServer()
        let proxy = try FaultProxy(upstream: registry.port)
        let tmp = try TemporaryDirectory("kiln-fault")
        defer {
            proxy.stop()
            registry.stop()
            tmp.remove()
        }
        // An image with a 6 MB layer (pushed in 1 MiB chunks) and a 2 MB one (one PUT).
        try Shell.run([
            "sh", "-c",
            "head -c 6000000 /dev/urandom > '\(tmp.path)/big'; head -c 2000000 /dev/urandom > '\(tmp.path)/small'",
        ])
        try tmp.write(
            "f.yaml",
            """
            name: faulty
            version: "1"
            compression: none
            layers:
              - name: big
                add: [{src: big, to: /big}]
              - name: small
                add: [{src: small, to: /small}]
            """)
        try KilnBinary.run(["build", tmp.path + "/f.yaml", "--store", tmp.path + "/images"])
        let layout = try OCILayout(root: tmp.path + "/images")
        let tagged = try layout.resolve("faulty:1")
        let transport = try HTTPTransport(options: HTTPOptions(attempts: 4, baseDelay: 0.05))
        let client = RegistryClient(
            registry: proxy.address, transport: transport,
            options: RegistryOptions(monolithicLimit: 4 << 20, chunkSize: 1 << 20, jobs: 2))
        let pushed = try await Pusher(layout: layout, client: client).push([
            .init(repository: "f/faulty", descriptor: tagged, tags: ["1"])
        ])
        await transport.shutdown()
        for fault in ["429", "500", "reset during PATCH", "reset during PUT"] {
            #expect(proxy.log.contains(fault), "fault \(fault) was injected")
        }
        #expect(pushed[0].digest == tagged.digest)
        let raw = try Shell.run([
            "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://\(registry.address)/f/faulty:1",
        ]).stdout
        #expect(Digest.sha256(Data(raw.utf8)) == tagged.digest)
        try Shell.run([
            "skopeo", "copy", "--src-tls-verify=false", "docker://\(registry.address)/f/faulty:1",
            "oci:\(tmp.path)/back:x",
        ])

        // A registry that keeps failing: the push fails clearly and no tag appears.
        let dead = try HTTPTransport(options: HTTPOptions(attempts: 2, baseDelay: 0.01))
        let failing = RegistryClient(
            registry: "127.0.0.1:\(try freePort())", transport: dead, options: RegistryOptions())
        await #expect(throws: RegistryError.self) {
            _ = try await Pusher(layout: layout, client: failing).push([
                .init(repository: "f/other", descriptor: tagged, tags: ["1"])
            ])
        }
        await dead.shutdown()
        let tags = try Shell.run(["skopeo", "list-tags", "--tls-verify=false", "docker://\(registry.address)/f/faulty"])
            .stdout
        #expect(tags.contains("\"1\""))
    }

    @Test func largeBlobPushesWithFlatMemory() throws {
        let registry = try RegistryServer()
        let tmp = try TemporaryDirectory("kiln-large")
        defer {
            registry.stop()
            tmp.remove()
        }
        try Shell.run(["sh", "-c", "head -c 300000000 /dev/urandom > '\(tmp.path)/blob.bin'"])
        try tmp.write(
            "l.yaml",
            "name: large\nversion: \"1\"\ncompression: none\nlayers:\n  - name: blob\n    add: [{src: blob.bin, to: /blob.bin}]\n"
        )
        try KilnBinary.run(["build", tmp.path + "/l.yaml", "--store", tmp.path + "/images"])
        let result = try Shell.run([
            "/usr/bin/time", "-v", KilnBinary.path, "push", "--to", registry.address, "--store", tmp.path + "/images",
        ])
        let line = result.stderr.split(separator: "\n").first { $0.contains("Maximum resident set size") } ?? ""
        let kilobytes = Int(line.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
        print("kiln push of a 300 MB blob: peak RSS \(kilobytes / 1024) MB")
        #expect(kilobytes > 0 && kilobytes < 150 * 1024, "peak RSS \(kilobytes) kB for a 300 MB blob")
        let raw = try Shell.run(["skopeo", "inspect", "--tls-verify=false", "docker://\(registry.address)/large:1"])
            .stdout
        #expect(raw.contains(try OCILayout(root: tmp.path + "/images").resolve("large:1").digest.description))
    }
}

/// Collects transfer events for assertions.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [TransferEvent] = []

    func record(_ event: TransferEvent) {
        lock.lock()
        events.append(event)
        lock.unlock()
    }

    func clear() {
        lock.lock()
        events.removeAll()
        lock.unlock()
    }

    func uploads(of digest: Digest) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return events.filter { if case .blobUploaded(_, let d, _) = $0 { return d == digest } else { return false } }
            .count
    }

    var uploadCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return events.filter { if case .blobUploaded = $0 { return true } else { return false } }.count
    }

    var manifestPushes: Int {
        lock.lock()
        defer { lock.unlock() }
        return events.filter { if case .manifestPushed = $0 { return true } else { return false } }.count
    }

    func refusals(of digest: Digest) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return events.filter {
            if case .mountRefused(_, let d, _) = $0 { return d == digest } else { return false }
        }.count
    }

    var downloads: Int {
        lock.lock()
        defer { lock.unlock() }
        return events.filter { if case .blobDownloaded = $0 { return true } else { return false } }.count
    }

    var mounts: Int {
        lock.lock()
        defer { lock.unlock() }
        return events.filter { if case .blobMounted = $0 { return true } else { return false } }.count
    }
}

/// A layer blob flipped in the store after the build: push hashes the file as it sends it and refuses it
/// before the upload completes, so the registry ends up with neither the blob nor the tag.
@Suite struct TamperedPushTests {
    @Test func aTamperedBlobIsRefusedBeforeTheRegistryHasIt() throws {
        let registry = try RegistryServer()
        let tmp = try TemporaryDirectory("kiln-tamperpush")
        defer {
            registry.stop()
            tmp.remove()
        }
        try tmp.write("r/big", String(repeating: "kiln", count: 500_000))
        try tmp.write(
            "r/app.yaml",
            """
            name: app
            version: "1"
            compression: none
            layers:
              - name: data
                add: [{src: big, to: /big}]
            """)
        let store = tmp.path + "/images"
        try KilnBinary.run(["build", tmp.path + "/r", "--store", store])
        let layout = try OCILayout(root: store)
        let image = try #require(try layout.images(for: try layout.resolve("app:1")).first)
        let layer = try #require(image.manifest.layers.last)
        let path = layout.blobPath(layer.digest)
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: 1_000_000)
        try handle.write(contentsOf: Data("X".utf8))
        try handle.close()

        let pushed = try KilnBinary.run(
            ["push", "app", "--to", "\(registry.address)/ns", "--store", store], check: false)
        #expect(pushed.status == 2, "\(pushed.stderr)")
        #expect(pushed.stderr.contains(layer.digest.encoded), "\(pushed.stderr)")
        #expect(pushed.stderr.contains("kiln fsck"), "\(pushed.stderr)")
        #expect(try Oracles.remoteDigest("\(registry.address)/ns/app:1") == nil)
        let blob = try Shell.run(
            [
                "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-I",
                "http://\(registry.address)/v2/ns/app/blobs/\(layer.digest)",
            ], check: false)
        #expect(blob.stdout == "404", "the registry has the tampered blob")
    }
}
