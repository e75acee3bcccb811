import Foundation
import KilnLayer
import KilnOCI
import KilnRelease
import KilnStore
import KilnTestSupport
import Testing
import Yams

/// Release, rollback, diff, deploy-refs, verify and export, end to end through the CLI against a real
/// docker-registry, read back by skopeo and podman.
@Suite(.serialized) struct ReleaseTests {
    /// A project directory with two recipes: `hello` (busybox + a message file, ports, a volume) and `side`
    /// (one generated file, two platforms: an image index), for the duration of `body`.
    func withProject<T>(message: String, _ body: (TemporaryDirectory) async throws -> T) async throws -> T {
        try await withTemporaryDirectory("kiln-release") { tmp in
            try project(tmp, message: message)
            return try await body(tmp)
        }
    }

    func project(_ tmp: TemporaryDirectory, message: String) throws {
        try Shell.run(["cp", "/bin/busybox", tmp.path + "/busybox-bin"])
        try FileManager.default.createDirectory(atPath: tmp.path + "/recipes", withIntermediateDirectories: true)
        try Shell.run(["mv", tmp.path + "/busybox-bin", tmp.path + "/recipes/busybox"])
        try tmp.write("recipes/msg.txt", message)
        try tmp.write(
            "recipes/hello.yaml",
            """
            name: hello
            version: "0.0.0"
            layers:
              - name: busybox
                add: [{src: busybox, to: /bin/busybox, mode: "0755"}]
              - name: message
                add: [{src: msg.txt, to: /etc/msg.txt}]
            entrypoint: [/bin/busybox]
            cmd: [cat, /etc/msg.txt]
            ports: [7770, 7771/tcp]
            volumes: [/data]
            stop-signal: SIGINT
            """)
        try tmp.write(
            "recipes/side.yaml",
            """
            name: side
            version: "0.0.0"
            platforms: [linux/amd64, linux/arm64]
            layers:
              - name: conf
                files: [{path: /etc/side.conf, content: "side = 1\\n"}]
            """)
    }

    @discardableResult
    func kiln(_ tmp: TemporaryDirectory, _ arguments: [String], epoch: String = "1700000000", check: Bool = true)
        throws -> CommandResult
    {
        try KilnBinary.run(
            arguments, environment: ["SOURCE_DATE_EPOCH": epoch, "KILN_STORE": tmp.path + "/images"],
            directory: tmp.path, check: check)
    }

    struct ReleaseReport: Decodable {
        var file: String
        var release: ReleaseDocument
        var moves: [TagMove]
    }

    func release(_ tmp: TemporaryDirectory, _ version: String, to: String, epoch: String, _ extra: [String] = [])
        throws -> ReleaseDocument
    {
        let out = try kiln(
            tmp, ["release", version, "--to", to, "--moving-tag", "stable", "--json"] + extra, epoch: epoch)
        let report = try JSONDecoder().decode(ReleaseReport.self, from: Data(out.stdout.utf8))
        #expect(report.file == "releases/\(version).json")
        // The file on disk is the document reported.
        let onDisk = try ReleaseDirectory(path: tmp.path + "/releases").load(version)
        #expect(onDisk == report.release)
        return report.release
    }

    /// `DELETE /v2/PATH` on the registry; returns the HTTP status.
    func delete(_ registry: RegistryServer, _ path: String) throws -> String {
        try Shell.run([
            "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE",
            "http://\(registry.address)/v2/\(path)",
        ]).stdout
    }

    func digests(_ document: ReleaseDocument) -> [String: String] {
        Dictionary(uniqueKeysWithValues: document.images.map { ($0.name, $0.digest.description) })
    }

    @Test func releaseTwoVersionsRollBackRefuseWhenIncompleteDiffAndDeploy() async throws {
        try await withRegistry { registry in
            try await withProject(message: "one\n") { tmp in
                let to = "\(registry.address)/ns"
                try kiln(tmp, ["build", "recipes", "--version", "1.0.0"])
                let v1 = try release(tmp, "1.0.0", to: to, epoch: "1700000000")
                try tmp.write("recipes/msg.txt", "two\n")
                try kiln(tmp, ["build", "recipes", "--version", "2.0.0"])
                let v2 = try release(tmp, "2.0.0", to: to, epoch: "1700000100", ["--revision", "abc123"])
                let d1 = digests(v1)
                let d2 = digests(v2)
                #expect(Set(d1.keys) == ["hello", "side"])
                #expect(d1["hello"] != d2["hello"], "the message changed")
                // side's files and config did not change, so neither did its digest: the version is no input to it.
                #expect(d1["side"] == d2["side"])

                // The documents record what they should.
                #expect(v1.version == "1.0.0" && v1.created == "2023-11-14T22:13:20Z")
                #expect(v1.revision == nil, "not a git checkout and no --revision")
                #expect(v2.revision == "abc123")
                #expect(v1.movingTags == ["stable"])
                #expect(v1.recipesDigest != nil && v1.recipesDigest != v2.recipesDigest, "recipes/msg.txt changed")
                #expect(v1.lockDigest == nil)
                let hello1 = try #require(v1.images.first { $0.name == "hello" })
                #expect(hello1.repository == "ns/hello" && hello1.tags == ["1.0.0"])
                #expect(hello1.reference == "\(registry.address)/ns/hello@\(hello1.digest)")
                #expect(hello1.mediaType == MediaType.imageManifest && hello1.platforms == nil)
                let side1 = try #require(v1.images.first { $0.name == "side" })
                #expect(side1.mediaType == MediaType.imageIndex)
                #expect(side1.platforms?.map(\.platform) == ["linux/amd64", "linux/arm64"])

                // The registry serves every version tag and `stable` at 2.0.0 (skopeo reads it independently).
                for (name, digest) in d1 { #expect(try Oracles.remoteDigest("\(to)/\(name):1.0.0") == digest) }
                for (name, digest) in d2 {
                    #expect(try Oracles.remoteDigest("\(to)/\(name):2.0.0") == digest)
                    #expect(try Oracles.remoteDigest("\(to)/\(name):stable") == digest)
                }
                // The release document is an OCI artifact in ns/kiln-releases.
                let raw = try Shell.run([
                    "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://\(to)/kiln-releases:release-1.0.0",
                ]).stdout
                let artifact = try JSONDecoder().decode(Manifest.self, from: Data(raw.utf8))
                #expect(artifact.artifactType == "application/vnd.kiln.release.v1+json")
                #expect(artifact.config.mediaType == "application/vnd.oci.empty.v1+json")
                #expect(artifact.layers.map(\.digest) == [Digest.sha256(try v1.encoded())])

                // `kiln releases` lists both, oldest first.
                struct Row: Decodable {
                    var version: String
                    var imageCount: Int
                    var created: String
                }
                struct Listing: Decodable { var releases: [Row] }
                let rows = try JSONDecoder().decode(
                    Listing.self, from: Data(try kiln(tmp, ["releases", "--json"]).stdout.utf8)
                ).releases
                #expect(rows.map(\.version) == ["1.0.0", "2.0.0"])
                #expect(rows.map(\.imageCount) == [2, 2])

                // `kiln diff` names the changed image and exactly the changed layer.
                let diff = try JSONDecoder().decode(
                    ReleaseDiff.self, from: Data(try kiln(tmp, ["diff", "1.0.0", "2.0.0", "--json"]).stdout.utf8))
                let hello = try #require(diff.images.first { $0.name == "hello" })
                #expect(hello.status == .changed)
                #expect(hello.layers.map(\.index) == [1])
                #expect(hello.layers.first?.createdBy == "kiln: layer message of hello")
                let side = try #require(diff.images.first { $0.name == "side" })
                #expect(side.status == .unchanged && side.layers.isEmpty && !side.configChanged)
                let diffText = try kiln(tmp, ["diff", "1.0.0", "2.0.0"]).stdout
                #expect(diffText.contains("layer 1 [linux/amd64] kiln: layer message of hello: "))
                #expect(diffText.contains("side: unchanged \(d2["side"]!)"))

                // A dry run shows the moves and changes nothing.
                let dry = try kiln(tmp, ["rollback", "1.0.0", "--dry-run"]).stdout
                #expect(dry.contains("would move hello: stable \(d2["hello"]!) → \(d1["hello"]!)"))
                #expect(try Oracles.remoteDigest("\(to)/hello:stable") == d2["hello"])

                // Roll back: every moving tag now serves 1.0.0's digests.
                let moved = try kiln(tmp, ["rollback", "1.0.0"]).stdout
                #expect(moved.contains("hello: stable \(d2["hello"]!) → \(d1["hello"]!)"))
                #expect(moved.contains("side: stable already at \(d1["side"]!)"))
                // Again: nothing left to move.
                #expect(
                    try kiln(tmp, ["rollback", "1.0.0"]).stdout.contains("hello: stable already at \(d1["hello"]!)"))
                for (name, digest) in d1 { #expect(try Oracles.remoteDigest("\(to)/\(name):stable") == digest) }

                // Roll forward to 2.0.0 from the registry's copy of the release (no local file).
                try FileManager.default.moveItem(
                    atPath: tmp.path + "/releases/2.0.0.json", toPath: tmp.path + "/v2.json")
                try kiln(tmp, ["rollback", "2.0.0", "--to", to, "--tag", "stable"])
                try FileManager.default.moveItem(
                    atPath: tmp.path + "/v2.json", toPath: tmp.path + "/releases/2.0.0.json")
                for (name, digest) in d2 { #expect(try Oracles.remoteDigest("\(to)/\(name):stable") == digest) }

                // deploy-refs: digests only, deterministic, and valid compose / Kubernetes documents.
                let refs = try kiln(tmp, ["deploy-refs", "2.0.0"]).stdout
                #expect(refs == "\(to)/hello@\(d2["hello"]!)\n\(to)/side@\(d2["side"]!)\n")
                let compose = try kiln(tmp, ["deploy-refs", "2.0.0", "--format", "compose"]).stdout
                #expect(try kiln(tmp, ["deploy-refs", "2.0.0", "--format", "compose"]).stdout == compose)
                // Without the local store the configs come from the registry: the same file.
                try kiln(
                    tmp,
                    ["deploy-refs", "2.0.0", "--format", "compose", "-o", "compose.yaml", "--store", "/nonexistent"])
                #expect(try String(contentsOfFile: tmp.path + "/compose.yaml", encoding: .utf8) == compose)
                // One node (DeployNodeTests has the Komodo details): `side` has nothing to run (a base image) and is
                // not deployed; hello is no Komodo image, so it gets generic names and publishes its own declared ports.
                let parsed = try #require(try Yams.load(yaml: compose) as? [String: Any])
                let services = try #require(parsed["services"] as? [String: [String: Any]])
                #expect(Set(services.keys) == ["hello"])
                #expect(services["hello"]?["image"] as? String == "\(to)/hello@\(d2["hello"]!)")
                #expect(services["hello"]?["ports"] as? [String] == ["7770:7770/tcp", "7771:7771/tcp"])
                #expect(services["hello"]?["volumes"] as? [String] == ["hello-data:/data"])
                #expect(services["hello"]?["stop_signal"] as? String == "SIGINT")
                #expect((parsed["volumes"] as? [String: Any])?.keys.sorted() == ["hello-data"])

                let kube = try kiln(tmp, ["deploy-refs", "2.0.0", "--format", "kubernetes"]).stdout
                let documents = try Yams.load_all(yaml: kube).compactMap { $0 as? [String: Any] }
                #expect(documents.map { $0["kind"] as? String } == ["Service", "StatefulSet"])
                for document in documents {
                    let metadata = try #require(document["metadata"] as? [String: Any])
                    let name = try #require(metadata["name"] as? String)
                    #expect(name == "node-hello")
                }
                let spec = try #require(documents.last?["spec"] as? [String: Any])
                #expect(spec["serviceName"] as? String == "node-hello")
                let podSpec = try #require((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
                let containers = try #require(podSpec["containers"] as? [[String: Any]])
                #expect(containers.compactMap { $0["image"] as? String } == ["\(to)/hello@\(d2["hello"]!)"])
                let ports = try #require(containers[0]["ports"] as? [[String: Any]])
                #expect(ports.compactMap { $0["containerPort"] as? Int } == [7770, 7771])
                let mounts = try #require(containers[0]["volumeMounts"] as? [[String: Any]])
                let claims = try #require(spec["volumeClaimTemplates"] as? [[String: Any]])
                #expect(mounts.map { $0["mountPath"] as? String } == ["/data"])
                #expect(
                    mounts.map { $0["name"] as? String }
                        == claims.map { ($0["metadata"] as? [String: Any])?["name"] as? String })

                // Remove something 1.0.0 needs: rollback refuses, names it, and moves no tag at all. First side's arm64
                // manifest (side comes after hello, so a rollback that moved tags as it went would have moved hello's).
                let sideArm = try #require(side1.platforms?.last?.digest)
                #expect(try delete(registry, "ns/side/manifests/\(sideArm)") == "202")
                var refused = try kiln(tmp, ["rollback", "1.0.0"], check: false)
                #expect(refused.status == 1)
                #expect(refused.stderr.contains("refusing to roll back to 1.0.0"))
                #expect(refused.stderr.contains("missing manifest \(to)/side@\(sideArm) (side linux/arm64)"))
                for (name, digest) in d2 { #expect(try Oracles.remoteDigest("\(to)/\(name):stable") == digest) }
                // Then a layer blob of hello 1.0.0: both are reported, still nothing moves.
                let layout = try OCILayout(root: tmp.path + "/images")
                let messageLayer = try layout.images(for: try layout.resolve("hello:1.0.0"))[0].manifest.layers[1]
                    .digest
                #expect(try delete(registry, "ns/hello/blobs/\(messageLayer)") == "202")
                refused = try kiln(tmp, ["rollback", "1.0.0"], check: false)
                #expect(
                    refused.status == 1, "the check ran and found the release incomplete: 1, as README's table says")
                #expect(refused.stderr.contains("missing blob \(to)/hello@\(messageLayer) (hello layer 1)"))
                #expect(refused.stderr.contains("lacks 2 items"))
                for (name, digest) in d2 { #expect(try Oracles.remoteDigest("\(to)/\(name):stable") == digest) }

                // gc keeps what a local release file pins even when no tag does.
                #expect(try layout.untag("hello:1.0.0"))
                struct GCReport: Decodable { var removed: [String] }
                let kept = try JSONDecoder().decode(
                    GCReport.self, from: Data(try kiln(tmp, ["gc", "--grace", "0", "--dry-run", "--json"]).stdout.utf8))
                #expect(!kept.removed.contains(messageLayer.description))
                let unpinned = try JSONDecoder().decode(
                    GCReport.self,
                    from: Data(
                        try kiln(tmp, ["gc", "--grace", "0", "--dry-run", "--json", "--releases", "/nonexistent"])
                            .stdout.utf8))
                #expect(unpinned.removed.contains(messageLayer.description))

                // A release is final: other images under 1.0.0 are refused, the same images re-push and keep the file.
                let file1 = try Data(contentsOf: URL(fileURLWithPath: tmp.path + "/releases/1.0.0.json"))
                let file2 = try Data(contentsOf: URL(fileURLWithPath: tmp.path + "/releases/2.0.0.json"))
                try kiln(tmp, ["build", "recipes", "--version", "1.0.0"])
                let again = try kiln(tmp, ["release", "1.0.0", "--to", to], check: false)
                #expect(!again.succeeded && again.stderr.contains("release 1.0.0 already exists"))
                #expect(try Data(contentsOf: URL(fileURLWithPath: tmp.path + "/releases/1.0.0.json")) == file1)
                try kiln(
                    tmp, ["release", "2.0.0", "--to", to, "--moving-tag", "stable", "--revision", "abc123"], epoch: "1")
                #expect(try Data(contentsOf: URL(fileURLWithPath: tmp.path + "/releases/2.0.0.json")) == file2)
                // The same images with other options (moving tags) would rewrite the record just as silently: refused.
                let retagged = try kiln(
                    tmp, ["release", "2.0.0", "--to", to, "--moving-tag", "latest", "--revision", "abc123"], epoch: "1",
                    check: false)
                #expect(!retagged.succeeded && retagged.stderr.contains("already exists in"))
                #expect(retagged.stderr.contains("with other options (moving tags [\"stable\"] → [\"latest\"])"))
                #expect(try Data(contentsOf: URL(fileURLWithPath: tmp.path + "/releases/2.0.0.json")) == file2)
            }
        }
    }

    @Test func verifyPassesOnAFreshStoreAndNamesTheLayerAndFileThatDiffer() async throws {
        try await withRegistry { registry in
            try await withProject(message: "one\n") { tmp in
                try kiln(tmp, ["build", "recipes", "--version", "1.0.0", "--revision", "r1"])
                try kiln(tmp, ["push", "--to", "\(registry.address)/ns"])
                // The rebuild uses another store and no SOURCE_DATE_EPOCH: the image's annotations supply them.
                let ok = try KilnBinary.run(
                    ["verify", "\(registry.address)/ns/hello:1.0.0", "--recipes", tmp.path + "/recipes"],
                    environment: ["SOURCE_DATE_EPOCH": ""], directory: "/")
                #expect(ok.stdout.hasPrefix("OK \(registry.address)/ns/hello:1.0.0"))
                let pinned = try OCILayout(root: tmp.path + "/images").resolve("hello:1.0.0").digest
                let byDigest = try KilnBinary.run(
                    ["verify", "\(registry.address)/ns/hello@\(pinned)", "--recipes", tmp.path + "/recipes", "--json"],
                    environment: ["SOURCE_DATE_EPOCH": ""], directory: "/")
                let pinnedReport = try JSONDecoder().decode(VerifyReport.self, from: Data(byDigest.stdout.utf8))
                #expect(pinnedReport.matches && pinnedReport.rebuiltDigest == pinned)

                try tmp.write("recipes/msg.txt", "tampered\n")
                let bad = try KilnBinary.run(
                    ["verify", "\(registry.address)/ns/hello:1.0.0", "--recipes", tmp.path + "/recipes"],
                    environment: ["SOURCE_DATE_EPOCH": ""], directory: "/", check: false)
                #expect(bad.status == 1)
                #expect(bad.stdout.contains("first differing layer: 1 (kiln: layer message of hello)"))
                #expect(bad.stdout.contains("~ /etc/msg.txt: size 4 → 9, content "))
                let json = try KilnBinary.run(
                    ["verify", "\(registry.address)/ns/hello:1.0.0", "--recipes", tmp.path + "/recipes", "--json"],
                    environment: ["SOURCE_DATE_EPOCH": ""], directory: "/", check: false)
                let report = try JSONDecoder().decode(VerifyReport.self, from: Data(json.stdout.utf8))
                #expect(!report.matches && report.layerIndex == 1)
                #expect(report.files.count == 1 && report.files[0].hasPrefix("~ /etc/msg.txt"))
            }
        }
    }

    @Test func exportIsDeterministicAndLoadsIntoPodmanAndSkopeo() async throws {
        try await withPodman { podman in
            try await withProject(message: "exported\n") { tmp in
                try kiln(tmp, ["build", "recipes", "--version", "1.0.0"])
                let layout = try OCILayout(root: tmp.path + "/images")
                let digest = try layout.resolve("hello:1.0.0").digest
                func read(_ name: String) throws -> Data {
                    try Data(contentsOf: URL(fileURLWithPath: tmp.path + "/" + name))
                }
                for format in ["oci", "docker"] {
                    try kiln(tmp, ["export", "hello:1.0.0", "--format", format, "-o", "\(format)-a.tar"])
                    try kiln(tmp, ["export", "hello:1.0.0", "--format", format, "-o", "\(format)-b.tar"])
                    #expect(try read("\(format)-a.tar") == read("\(format)-b.tar"), "\(format) export is deterministic")
                    try Shell.run(
                        ["sh", "-c", "'\(KilnBinary.path)' export hello:1.0.0 --format \(format) -o - > stdout.tar"],
                        environment: ["KILN_STORE": tmp.path + "/images"], directory: tmp.path)
                    #expect(try read("stdout.tar") == read("\(format)-a.tar"), "-o - writes the same bytes")
                    // Every entry: sorted, mtime 0, root-owned, 0644 files and 0755 directories.
                    let entries = try LayerReader.files(at: tmp.path + "/\(format)-a.tar")
                    #expect(entries.map(\.path) == entries.map(\.path).sorted { LayerPath.precedes($0, $1) })
                    #expect(entries.allSatisfy { $0.mtime == 0 && $0.uid == 0 && $0.gid == 0 })
                    #expect(entries.allSatisfy { $0.mode == ($0.kind == .directory ? 0o755 : 0o644) })
                    #expect(entries.contains { $0.path == "manifest.json" } == (format == "docker"))
                    #expect(entries.contains { $0.path == "blobs/sha256/\(digest.encoded)" })
                }
                // skopeo reads both archives as OCI and the docker one as a docker archive.
                for file in ["oci-a.tar", "docker-a.tar"] {
                    let inspect = try Shell.run([
                        "skopeo", "inspect", "--raw", "oci-archive:\(tmp.path)/\(file):hello:1.0.0",
                    ])
                    #expect(Digest.sha256(Data(inspect.stdout.utf8)) == digest)
                }
                try Shell.run(["skopeo", "inspect", "docker-archive:\(tmp.path)/docker-a.tar"])
                // A multi-platform image: the OCI archive holds the index, the docker one this machine's platform.
                let side = try layout.resolve("side:1.0.0")
                try kiln(tmp, ["export", "side:1.0.0", "--format", "oci", "-o", "side-oci.tar"])
                let sideRaw = try Shell.run([
                    "skopeo", "inspect", "--raw", "oci-archive:\(tmp.path)/side-oci.tar:side:1.0.0",
                ])
                #expect(Digest.sha256(Data(sideRaw.stdout.utf8)) == side.digest)
                try kiln(
                    tmp,
                    [
                        "export", "side:1.0.0", "--format", "docker", "-o", "side-docker.tar", "--platform",
                        "linux/arm64",
                    ])
                let arm = try #require(try layout.images(for: side).first { $0.config.architecture == "arm64" })
                let sideInspect = try Shell.run([
                    "skopeo", "inspect", "--raw", "docker-archive:\(tmp.path)/side-docker.tar",
                ])
                #expect(sideInspect.stdout.contains(arm.manifest.config.digest.encoded))
                // podman loads the docker archive and runs it.
                let loaded = try podman.podman(["load", "-i", tmp.path + "/docker-a.tar"]).stdout
                let name = try #require(
                    loaded.split(separator: "\n").first { $0.hasPrefix("Loaded image") }?.split(separator: " ").last)
                #expect(name.hasSuffix("hello:1.0.0"))
                #expect(try podman.run(String(name)).stdout == "exported\n")
            }
        }
    }
}
