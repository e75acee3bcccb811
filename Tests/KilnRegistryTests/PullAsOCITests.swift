import Foundation
import KilnHTTP
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnRegistry

/// Docker v2s2 images and manifest lists pulled from a real docker-registry are stored with OCI media types:
/// skopeo (`oci:`), umoci and podman read the store, and a base pinned by its published digest still builds.
@Suite(.serialized) struct PullAsOCITests {
    static let dockerTypes = [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.container.image.v1+json", "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ]

    /// A store with a runnable image (busybox echo), and a registry holding it as docker v2s2 (skopeo
    /// --format v2s2, as docker and buildah push) plus a docker manifest list of it and golden-base.
    func dockerRegistry(_ tmp: TemporaryDirectory, _ registry: RegistryServer) async throws -> (
        single: String, list: String
    ) {
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
            cmd: [docker image, stored as OCI]
            """)
        let built = tmp.path + "/built"
        try await FixtureStore.build([tmp.path + "/run.yaml", FixtureStore.golden], into: built)
        let single = "\(registry.address)/ext/run:v2s2"
        for (image, ref) in [("runnable:1", single), ("golden-base:1.0.0", "\(registry.address)/ext/run:other")] {
            try Shell.run([
                "skopeo", "copy", "--format", "v2s2", "--dest-tls-verify=false", "oci:\(built):\(image)",
                "docker://\(ref)",
            ])
        }
        // The manifest list, as `docker manifest push` writes one.
        func entry(_ ref: String, _ arch: String) throws -> [String: Any] {
            let raw = try Shell.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "docker://\(ref)"]).stdout
            #expect(raw.contains("application/vnd.docker.distribution.manifest.v2+json"))
            return [
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": Data(raw.utf8).count,
                "digest": Digest.sha256(Data(raw.utf8)).description,
                "platform": ["architecture": arch, "os": "linux"],
            ]
        }
        let list: [String: Any] = [
            "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests": [try entry(single, "amd64"), try entry("\(registry.address)/ext/run:other", "arm64")],
        ]
        let listFile = try tmp.write(
            "list.json", String(decoding: try JSONSerialization.data(withJSONObject: list), as: UTF8.self))
        try Shell.run([
            "curl", "-sf", "-X", "PUT", "-H", "Content-Type: application/vnd.docker.distribution.manifest.list.v2+json",
            "--data-binary", "@" + listFile, "http://\(registry.address)/v2/ext/run/manifests/list",
        ])
        return (single, "\(registry.address)/ext/run:list")
    }

    func publishedDigest(_ ref: String) throws -> String {
        let raw = try Shell.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "docker://\(ref)"]).stdout
        return Digest.sha256(Data(raw.utf8)).description
    }

    /// Every document the store reaches from a tag carries OCI media types only.
    func expectOCIOnly(_ store: String, _ reference: String) throws {
        let layout = try OCILayout(root: store)
        let graph = try layout.graph(from: try layout.resolve(reference))
        for node in graph.nodes {
            let text = String(decoding: node.data, as: UTF8.self)
            for type in Self.dockerTypes { #expect(!text.contains(type), "\(reference): \(node.descriptor.digest)") }
        }
    }

    @Test func dockerImagesAndManifestListsAreStoredAsOCI() async throws {
        try await withRegistry(scratch: "kiln-pulloci") { registry, tmp in
            let podman = try Podman()
            defer { podman.cleanUp() }
            let (single, list) = try await dockerRegistry(tmp, registry)
            let store = tmp.path + "/store"
            try KilnBinary.run(["pull", single, "--store", store, "--tag", "run:v2s2"])
            try KilnBinary.run([
                "pull", list, "--platform", "linux/amd64", "--platform", "linux/arm64", "--store", store, "--tag",
                "run:list",
            ])
            try KilnBinary.run(["pull", list, "--platform", "linux/amd64", "--store", store, "--tag", "run:fromlist"])
            for tag in ["run:v2s2", "run:list", "run:fromlist"] { try expectOCIOnly(store, tag) }

            // skopeo, umoci and podman read the store.
            let index = try Oracles.skopeoInspect(layout: store, reference: "run:list", raw: true)
            #expect(index["mediaType"] as? String == MediaType.imageIndex)
            #expect((index["manifests"] as? [[String: Any]])?.count == 2)
            for tag in ["run:v2s2", "run:fromlist"] {
                #expect(try Oracles.skopeoInspect(layout: store, reference: tag)["Architecture"] as? String == "amd64")
                _ = try Oracles.umociUnpack(layout: store, reference: tag, into: tmp.path + "/bundle-" + tag)
            }
            #expect(FileManager.default.fileExists(atPath: tmp.path + "/bundle-run:v2s2/rootfs/bin/busybox"))
            for tag in ["run:v2s2", "run:list"] {
                let out = try podman.run("oci:\(store):\(tag)", extra: ["--platform", "linux/amd64"]).stdout
                #expect(out == "docker image stored as OCI\n", "\(tag)")
            }

            // The entry records what the registry published; the stored bytes differ (converted).
            let layout = try OCILayout(root: store)
            let entry = try layout.resolve("run:v2s2")
            let published = try publishedDigest(single)
            #expect(entry.annotations?["dev.kiln.source.digest"] == published)
            #expect(entry.annotations?["dev.kiln.source.reference"] == single)
            #expect(entry.digest.description != published)

            // A store written before conversion holds the base as served (docker), tagged as a build tagged it.
            let old = try OCILayout(root: tmp.path + "/old")
            let transport = try HTTPTransport()
            let client = RegistryClient(registry: registry.address, transport: transport, options: RegistryOptions())
            let raw = try await Puller(layout: old, client: client).fetch(
                try Reference(parsing: single), platforms: nil)
            await transport.shutdown()
            #expect(raw.mediaType == MediaType.dockerManifest)
            try old.tag(raw, as: "\(registry.address)/ext/run:sha256-\(raw.digest.encoded)")

            // A recipe pinning the published digest builds from the store, without the registry, OCI throughout.
            registry.stop()
            try tmp.write(
                "app.yaml",
                """
                name: onbase
                version: "1"
                base: \(single)@\(published)
                layers:
                  - name: conf
                    files:
                      - path: /etc/onbase.conf
                        content: "x\\n"
                """)
            try KilnBinary.run(["build", tmp.path + "/app.yaml", "--store", store])
            try expectOCIOnly(store, "onbase:1")
            let built = try layout.images(for: try layout.resolve("onbase:1"))[0]
            #expect(built.manifest.layers.count == 2)
            #expect(built.manifest.annotations?[AnnotationKey.baseDigest] == published)
            let out = try podman.run("oci:\(store):onbase:1").stdout
            #expect(out == "docker image stored as OCI\n")
            // The old store's docker base is converted by the build: the same image, byte for byte.
            try KilnBinary.run(["build", tmp.path + "/app.yaml", "--store", old.root])
            try expectOCIOnly(old.root, "onbase:1")
            #expect(try old.resolve("onbase:1").digest == layout.resolve("onbase:1").digest)
        }
    }
}
