import Foundation
import KilnBuild
import KilnRecipe
import KilnStore
import KilnTestSupport
import Testing

/// `kiln build` end to end, checked by independent tools (umoci, skopeo, podman).
@Suite(.serialized) struct BuildIntegrationTests {
    static let golden = KilnBinary.packageRoot + "/Tests/Fixtures/golden"
    /// No SOURCE_DATE_EPOCH from the environment: the golden digests assume the epoch.
    static let environment = ["SOURCE_DATE_EPOCH": "", "TZ": "UTC"]

    @Test func goldenDigests() async throws {
        try await withTemporaryDirectory("kiln-golden") { tmp in
            try KilnBinary.run(["build", Self.golden, "--store", tmp.path + "/images"], environment: Self.environment)
            // Frozen by the determinism contract (encoding version 5). If this changes, the bytes Kiln writes
            // changed: bump Encoding.version and update these in the same commit.
            #expect(
                try KilnBinary.imageDigests(tmp.path + "/images") == [
                    "golden-base:1.0.0": "sha256:530f27158d4fa9baeec34d6bfc261a2189546fdddfe6d1076a43854a64c8d94f",
                    "golden-app:2.0.0": "sha256:2deafead24a7b2ca262335f2bfacb324fc34ee4d029bf1f029e29bdb159caf2e",
                    "golden-app:stable": "sha256:2deafead24a7b2ca262335f2bfacb324fc34ee4d029bf1f029e29bdb159caf2e",
                ])
        }
    }

    /// What happens behind the user's back is logged only when asked: `--verbose` or `KILN_LOG_LEVEL`.
    @Test func verboseAndLogLevelShowCacheDecisions() async throws {
        try await withTemporaryDirectory("kiln-verbose") { tmp in
            let build = ["build", Self.golden, "--store", tmp.path + "/images"]
            let quiet = try KilnBinary.run(build, environment: Self.environment)
            #expect(!quiet.stderr.contains("layer cache"))
            let verbose = try KilnBinary.run(build + ["--verbose"], environment: Self.environment)
            #expect(verbose.stderr.contains("layer cache hit: golden-app"), "\(verbose.stderr)")
            var environment = Self.environment
            environment["KILN_LOG_LEVEL"] = "debug"
            #expect(try KilnBinary.run(build, environment: environment).stderr.contains("layer cache hit: golden-base"))
            environment["KILN_LOG_LEVEL"] = "error"
            #expect(!(try KilnBinary.run(build, environment: environment).stderr.contains("layer cache")))
        }
    }

    @Test func reproducibleAcrossDirectoriesUmaskMtimesTimezoneAndOrder() async throws {
        try await withTemporaryDirectory("kiln-repro-a") { a in
            try await withTemporaryDirectory("kiln-repro-b") { b in
                try Shell.run(["cp", "-r", Self.golden, a.path + "/recipes"])
                try Shell.run(["cp", "-r", Self.golden, b.path + "/somewhere-else"])
                // B: other mtimes, other permission bits (no exec bit changes), other umask, TZ and order.
                try Shell.run(["sh", "-c", "find '\(b.path)' -exec touch -d '2011-11-11 11:11' {} +"])
                try Shell.run(["chmod", "0600", b.path + "/somewhere-else/files/data/a.txt"])
                try Shell.run(["chmod", "0700", b.path + "/somewhere-else/files/data"])
                try KilnBinary.run(
                    ["build", a.path + "/recipes", "--store", a.path + "/images"], environment: Self.environment)
                try Shell.run(
                    [
                        "sh", "-c",
                        "umask 077; '\(KilnBinary.path)' build '\(b.path)/somewhere-else/app.yaml' '\(b.path)/somewhere-else/base.yaml' --store '\(b.path)/images' --threads 1",
                    ], environment: ["SOURCE_DATE_EPOCH": "", "TZ": "Asia/Tokyo"])
                #expect(try KilnBinary.imageDigests(a.path + "/images") == KilnBinary.imageDigests(b.path + "/images"))
                let indexA = try Data(contentsOf: URL(fileURLWithPath: a.path + "/images/index.json"))
                let indexB = try Data(contentsOf: URL(fileURLWithPath: b.path + "/images/index.json"))
                #expect(indexA == indexB)
                let blobsA = try FileManager.default.contentsOfDirectory(atPath: a.path + "/images/blobs/sha256")
                    .sorted()
                let blobsB = try FileManager.default.contentsOfDirectory(atPath: b.path + "/images/blobs/sha256")
                    .sorted()
                #expect(blobsA == blobsB)
            }
        }
    }

    /// The golden recipes built through the library pipeline (no binary), as `kiln build` would.
    static func buildGolden(store: String, epoch: Int64 = 0) async throws -> [BuiltImage] {
        let set = try RecipeSet.load(paths: [golden])
        let plan = try Pipeline.plan(
            set, lockPath: store + "-kiln.lock", options: BuildOptions(sourceDateEpoch: epoch))
        let prepared = try await Pipeline.prepare(plan, store: store)
        return try await Pipeline.build(prepared, into: OCILayout(root: store))
    }

    @Test func sourceDateEpochStampsEverything() async throws {
        try await withTemporaryDirectory("kiln-sde") { tmp in
            let store = tmp.path + "/images"
            let built = try await Self.buildGolden(store: store, epoch: 1_700_000_000)
            let layout = try OCILayout(root: store)
            let image = try #require(try layout.images(for: layout.resolve("golden-app:2.0.0")).first)
            #expect(image.config.created == "2023-11-14T22:13:20Z")
            #expect(image.config.history?.allSatisfy { $0.created == "2023-11-14T22:13:20Z" } == true)
            #expect(image.manifest.annotations?["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z")
            let app = try #require(built.first { $0.name == "golden-app" })
            #expect(app.digest.description != "sha256:2deafead24a7b2ca262335f2bfacb324fc34ee4d029bf1f029e29bdb159caf2e")
        }
    }

    @Test func umociUnpacksWhatTheRecipeSays() async throws {
        try await withTemporaryDirectory("kiln-umoci") { tmp in
            let store = tmp.path + "/images"
            _ = try await Self.buildGolden(store: store)
            try Shell.run(["umoci", "unpack", "--image", "\(store):golden-app:2.0.0", tmp.path + "/bundle"])
            let root = tmp.path + "/bundle/rootfs"
            func attributes(_ path: String) throws -> (mode: Int, uid: Int, gid: Int) {
                let a = try FileManager.default.attributesOfItem(atPath: root + path)
                return (
                    (a[.posixPermissions] as! NSNumber).intValue, (a[.ownerAccountID] as! NSNumber).intValue,
                    (a[.groupOwnerAccountID] as! NSNumber).intValue
                )
            }
            #expect(try attributes("/usr/local/bin/hello") == (0o755, 0, 0))
            #expect(try attributes("/srv/data/a.txt") == (0o644, 3003, 3003))
            #expect(try attributes("/srv/data") == (0o755, 3003, 3003))
            #expect(try attributes("/etc/golden/b.txt") == (0o600, 0, 0))
            #expect(try attributes("/var/lib/golden") == (0o750, 3003, 3003))
            #expect(try attributes("/home/komodo") == (0o755, 3003, 3003))
            #expect(
                try FileManager.default.destinationOfSymbolicLink(atPath: root + "/usr/bin/hello")
                    == "../local/bin/hello")
            #expect(try String(contentsOfFile: root + "/etc/golden.conf", encoding: .utf8) == "answer = 42\n")
            #expect(try String(contentsOfFile: root + "/etc/app.conf", encoding: .utf8) == "mode = test\n")
            let passwd = try String(contentsOfFile: root + "/etc/passwd", encoding: .utf8)
            #expect(passwd.contains("komodo:x:3003:3003:komodo:/home/komodo:/sbin/nologin\n"))
            #expect(try String(contentsOfFile: root + "/etc/group", encoding: .utf8).contains("komodo:x:3003:\n"))
            // umoci's runtime config is the OCI conversion of the image config.
            let config =
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: URL(fileURLWithPath: tmp.path + "/bundle/config.json"))) as! [String: Any]
            let process = config["process"] as! [String: Any]
            #expect(process["args"] as? [String] == ["/usr/local/bin/hello", "--verbose"])
            #expect(process["cwd"] as? String == "/var/lib/golden")
            let env = process["env"] as! [String]
            #expect(env.contains("APP_MODE=test") && env.contains("PATH=/usr/local/bin:/usr/bin:/bin"))
            let user = process["user"] as! [String: Any]
            #expect((user["uid"] as? NSNumber)?.intValue == 3003)
            let annotations = config["annotations"] as! [String: String]
            #expect(annotations["org.opencontainers.image.stopSignal"] == "SIGINT")
            #expect(annotations["org.opencontainers.image.exposedPorts"] == "7770/tcp,7771/tcp")
        }
    }

    @Test func skopeoAgreesWithKilnInspect() async throws {
        try await withTemporaryDirectory("kiln-skopeo") { tmp in
            let store = tmp.path + "/images"
            try KilnBinary.run(["build", Self.golden, "--store", store], environment: Self.environment)
            let skopeo = try Oracles.skopeoInspect(layout: store, reference: "golden-app:2.0.0")
            let kiln =
                try JSONSerialization.jsonObject(
                    with: Data(KilnBinary.run(["inspect", "golden-app:2.0.0", "--json", "--store", store]).stdout.utf8))
                as! [String: Any]
            #expect(skopeo["Digest"] as? String == kiln["digest"] as? String)
            let image = (kiln["images"] as! [[String: Any]])[0]
            let layers = (image["layers"] as! [[String: Any]]).map { $0["digest"] as! String }
            #expect(skopeo["Layers"] as? [String] == layers)
            #expect(layers.count == 3, "files, accounts (from golden-base) and config (golden-app)")
            let config = (image["config"] as! [String: Any])["config"] as! [String: Any]
            #expect(skopeo["Env"] as? [String] == config["Env"] as? [String])
            #expect(
                skopeo["Labels"] as? [String: String] == [
                    "org.opencontainers.image.source": "https://example.com/golden"
                ])
            // The base's layers are shared, not copied.
            let base = try Oracles.skopeoInspect(layout: store, reference: "golden-base:1.0.0")
            #expect(Array(layers.prefix(2)) == base["Layers"] as? [String])
        }
    }

    @Test func busyboxImageRunsWithPodman() async throws {
        try await withTemporaryDirectory("kiln-podman") { tmp in
            try await withPodman { podman in
                try Shell.run(["cp", "/bin/busybox", tmp.path + "/busybox"])
                try tmp.write(
                    "busybox.yaml",
                    """
                    name: busybox-demo
                    version: "1.0"
                    layers:
                      - name: busybox
                        add:
                          - src: busybox
                            to: /bin/busybox
                        symlinks:
                          - path: /bin/sh
                            target: busybox
                        dirs:
                          - path: /work
                            uid: 1000
                            gid: 1000
                    users:
                      - name: app
                        uid: 1000
                    entrypoint: [/bin/busybox, sh, -c]
                    cmd: ['echo "greeting=$GREETING"; echo "uid=$(busybox id -u) user=$(busybox id -un)"; echo "pwd=$(pwd)"']
                    env:
                      GREETING: hello from kiln
                    user: app
                    workdir: /work
                    """)
                try KilnBinary.run(["build", tmp.path + "/busybox.yaml", "--store", tmp.path + "/images"])
                let out = try podman.run("oci:\(tmp.path)/images:busybox-demo:1.0").stdout
                #expect(out == "greeting=hello from kiln\nuid=1000 user=app\npwd=/work\n")
            }
        }
    }

    @Test func killedBuildLeavesAValidStore() async throws {
        try await withTemporaryDirectory("kiln-kill") { tmp in
            let store = tmp.path + "/images"
            try KilnBinary.run(["build", Self.golden, "--store", store], environment: Self.environment)
            let before = try KilnBinary.imageDigests(store)
            // A layer big enough to kill mid-write.
            try Shell.run(["sh", "-c", "head -c 400000000 /dev/urandom > '\(tmp.path)/big.bin'"])
            try tmp.write(
                "big.yaml",
                """
                name: big
                version: "1"
                layers:
                  - name: big
                    add:
                      - src: big.bin
                        to: /big.bin
                """)
            let pid = try ChildProcess.spawn(
                [
                    KilnBinary.path, "build", tmp.path + "/big.yaml", "--store", store, "--compression", "zstd",
                    "--threads", "1",
                ],
                stdout: "/dev/null", stderr: "/dev/null")
            // Wait until the layer is being written, then kill without warning.
            let staging = store + "/.kiln/tmp"
            let deadline = Date().addingTimeInterval(60)
            var staged = false
            while Date() < deadline && !staged {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? []
                staged = names.contains {
                    ((try? FileManager.default.attributesOfItem(atPath: staging + "/" + $0)[.size] as? NSNumber)?
                        .intValue
                        ?? 0) > 1_000_000
                }
                usleep(20_000)
            }
            kill(pid, SIGKILL)
            #expect(ChildProcess.wait(pid) == 128 + SIGKILL)
            #expect(staged, "the build was killed while writing its layer")
            // The store is still a valid layout with the earlier images intact.
            #expect(try KilnBinary.imageDigests(store) == before)
            try Shell.run(["umoci", "unpack", "--image", "\(store):golden-app:2.0.0", tmp.path + "/bundle"])
            // A rebuild completes, and the killed build's debris is gone.
            try KilnBinary.run(["build", tmp.path + "/big.yaml", "--store", store, "--compression", "zstd"])
            #expect(try KilnBinary.imageDigests(store)["big:1"] != nil)
            #expect(try FileManager.default.contentsOfDirectory(atPath: staging).isEmpty)
        }
    }

    @Test func badRecipesFailWithEveryLocationAndNothingStored() async throws {
        try await withTemporaryDirectory("kiln-bad") { tmp in
            try tmp.write(
                "bad.yaml",
                """
                name: bad
                version: "1"
                layers:
                  - name: files
                    add:
                      - src: missing.txt
                        to: /x
                      - src: "nothing-*.bin"
                        to: /y/
                """)
            let result = try KilnBinary.run(
                ["build", tmp.path + "/bad.yaml", "--store", tmp.path + "/images"], check: false)
            #expect(result.status == 65)
            #expect(
                result.stderr.contains("\(tmp.path)/bad.yaml:6:9: error: 'missing.txt' matches no file in \(tmp.path)"))
            #expect(result.stderr.contains("\(tmp.path)/bad.yaml:8:9: error: 'nothing-*.bin' matches no file"))
            #expect(result.stderr.contains("2 errors in recipes"))
            #expect(try KilnBinary.imageDigests(tmp.path + "/images").isEmpty)
        }
    }
}
