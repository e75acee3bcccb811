import Foundation
import KilnHTTP
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnRegistry

/// Push and pull against real docker-registry processes, read back by skopeo and podman.
@Suite(.serialized) struct PushPullTests {
    /// The golden recipes (RegistryCacheTests builds them with `kiln build`, whose cache flags it checks).
    static let golden = FixtureStore.golden

    func localDigests(_ store: String) throws -> [String: String] {
        let layout = try OCILayout(root: store)
        return Dictionary(
            uniqueKeysWithValues: try layout.tags().map { ($0.reference, $0.descriptor.digest.description) })
    }

    @Test func pushThenReadBackWithSkopeoKilnPullAndPodman() async throws {
        try await withRegistry(scratch: "kiln-push") { registry, tmp in
            let podman = try Podman()
            defer { podman.cleanUp() }
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
            let store = tmp.path + "/images"
            try await FixtureStore.build([FixtureStore.golden, tmp.path + "/run.yaml"], into: store)
            let local = try localDigests(store)
            let (_, pushed) = try PushCommand.run(store, to: "\(registry.address)/komodo")
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
    }

    @Test func rePushUploadsNothingAndSharedLayersMoveOnce() async throws {
        try await withRegistry(scratch: "kiln-push") { registry, tmp in
            let store = try await FixtureStore.golden(in: tmp)
            let layout = try OCILayout(root: store)
            let items = try layout.tags().filter { $0.tag != "stable" }.map {
                Pusher.Item(repository: "ns/" + $0.name, descriptor: $0.descriptor, tags: [$0.tag])
            }
            let events = EventLog()
            func pushOnce() async throws -> Int64 {
                let transport = try HTTPTransport()
                let client = RegistryClient(
                    registry: registry.address, transport: transport, options: RegistryOptions())
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
    }

    /// A fleet push is one graph (as go-containerregistry's MultiWrite): each blob shared by several images is
    /// uploaded once and mounted elsewhere, each manifest is written once its own blobs are in (not after every
    /// blob of the fleet), and a fresh registry is asked nothing twice: one HEAD per distinct blob, mounts and
    /// manifests and tags without a look first, the referrers API once.
    @Test func fleetPushUploadsEachSharedBlobOnceAndCommitsEachManifestAfterItsBlobs() async throws {
        try await withRegistry(scratch: "kiln-push") { registry, tmp in
            let store = try await FixtureStore.golden(in: tmp)
            let layout = try OCILayout(root: store)
            var items: [Pusher.Item] = []
            for (digest, group) in Dictionary(grouping: try layout.tags(), by: \.descriptor.digest).sorted(by: {
                $0.key < $1.key
            }) {
                var descriptor = group[0].descriptor
                descriptor.annotations = nil
                items.append(
                    .init(
                        repository: "fleet/" + group[0].name, descriptor: descriptor,
                        tags: ["\(digest.encoded.prefix(8))"])
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
            // The access log is in the order requests completed.
            let requests = registry.requests
            for item in items {
                let repository = "/v2/\(item.repository)/"
                let manifest = requests.firstIndex { $0 == "PUT \(repository)manifests/\(item.descriptor.digest)" }
                #expect(manifest != nil, "\(item.repository): its manifest was written")
                for image in try layout.images(for: item.descriptor) {
                    for blob in [image.manifest.config.digest] + image.manifest.layers.map(\.digest) {
                        let placed = requests.firstIndex {
                            $0.contains(blob.encoded)
                                && ($0.hasPrefix("PUT \(repository)blobs/uploads/")
                                    || $0.hasPrefix("POST \(repository)blobs/uploads/?mount="))
                        }
                        #expect(
                            (placed ?? Int.max) < (manifest ?? -1),
                            "\(item.repository): \(blob.encoded.prefix(12)) is in before the manifest naming it")
                    }
                }
            }
            #expect(requests.filter { $0.hasPrefix("HEAD ") && $0.contains("/blobs/") }.count == blobs.count)
            #expect(!requests.contains { $0.hasPrefix("HEAD ") && $0.contains("/manifests/") }, "\(requests)")
            #expect(requests.filter { $0.contains("/referrers/") }.count <= 1)
            for item in items {
                #expect(
                    try Oracles.remoteDigest("\(registry.address)/\(item.repository):\(item.tags[0])")
                        == item.descriptor.digest.description)
            }
        }
    }

    @Test func registryBasePinnedByDigestIsPulledOnceAndShared() async throws {
        try await withRegistry(scratch: "kiln-push") { registry, tmp in
            let store = try await FixtureStore.golden(in: tmp)
            let (_, pushed) = try PushCommand.run(store, to: "\(registry.address)/up", images: ["golden-base"])
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
            let parent = try OCILayout(root: store).images(
                for: try OCILayout(root: store).resolve("golden-base:1.0.0"))[0]
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
    }

    @Test func faultsAreSurvivedOrReportedWithoutDanglingTags() async throws {
        try await withRegistry(scratch: "kiln-fault") { registry, tmp in
            try await withFaultProxy(upstream: registry.port) { proxy in
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
                let layout = try await FixtureStore.build([tmp.path + "/f.yaml"], into: tmp.path + "/images")
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
                let tags = try Shell.run([
                    "skopeo", "list-tags", "--tls-verify=false", "docker://\(registry.address)/f/faulty",
                ])
                .stdout
                #expect(tags.contains("\"1\""))
            }
        }
    }

    /// The subject is the `kiln push` process's peak memory, so the push runs as the CLI.
    @Test func largeBlobPushesWithFlatMemory() async throws {
        try await withRegistry(scratch: "kiln-large") { registry, tmp in
            try Shell.run(["sh", "-c", "head -c 300000000 /dev/urandom > '\(tmp.path)/blob.bin'"])
            try tmp.write(
                "l.yaml",
                "name: large\nversion: \"1\"\ncompression: none\nlayers:\n  - name: blob\n    add: [{src: blob.bin, to: /blob.bin}]\n"
            )
            try await FixtureStore.build([tmp.path + "/l.yaml"], into: tmp.path + "/images")
            let result = try Shell.run([
                "/usr/bin/time", "-v", KilnBinary.path, "push", "--to", registry.address, "--store",
                tmp.path + "/images",
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
}
