import Foundation
import KilnHTTP
import KilnOCI
import KilnRegistry
import KilnTestSupport
import Testing

/// Build steps (issue 15) end to end through `kiln build`: environments from the host's configured Debian
/// mirror, the real dPoW archive (TestSources), podman running the result.
@Suite(.serialized) struct SourceBuildTests {

    static func hello(run: String) -> String {
        """
        name: hello
        version: "1"
        builds:
          - name: hello-build
            environment:
              suite: bookworm
              packages: [gcc, libc6-dev, dash, coreutils]
            sources:
              hello: {dir: hello}
            run: |
        \(run.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))
            outputs: [/out/hello, /out/stamp]
        layers:
          - name: app
            add:
              - {from: hello-build, src: hello, to: /usr/local/bin/hello}
              - {from: hello-build, src: stamp, to: /etc/hello-stamp}
        entrypoint: [/usr/local/bin/hello]
        """
    }

    static let compile = """
        cc -O2 -o /out/hello /src/hello/hello.c
        /out/hello > /out/stamp
        cat /out/stamp
        """

    /// What a CI runner sharing the registry cache (user `ci`) builds with.
    static func runnerEnvironment(_ tmp: TemporaryDirectory) -> [String: String] {
        [
            "SOURCE_DATE_EPOCH": "1700000000", "KILN_DEBIAN_MIRROR": "", "KILN_REGISTRY_USERNAME": "ci",
            "KILN_REGISTRY_PASSWORD": "cache-pw", "HOME": tmp.path,
        ]
    }

    /// `kiln build` of `tmp/recipes` as runner NAME: its own store and download cache, extra arguments after.
    static func runner(_ tmp: TemporaryDirectory) -> (String, [String]) throws -> CommandResult {
        { name, extra in
            try KilnBinary.run(
                [
                    "build", tmp.path + "/recipes", "--store", tmp.path + "/" + name, "--cache-dir",
                    tmp.path + "/dl-" + name,
                ]
                    + extra, environment: runnerEnvironment(tmp))
        }
    }

    /// `--cache-to`/`--cache-from` (issue 25): a second store with an empty download cache builds the C program
    /// from the registry cache with no step run and the same digest; a poisoned build entry (content other than
    /// its outputs.json records) is refused with a warning and the step runs here.
    @Test func secondStoreBuildsFromTheRegistryCacheWithNoStepRun() async throws {
        let registry = try RegistryServer(auth: .basic(user: "ci", password: "cache-pw"))
        let tmp = try TemporaryDirectory("kiln-srccache")
        defer {
            registry.stop()
            tmp.remove()
        }
        try tmp.write(
            "recipes/hello/hello.c",
            "#include <stdio.h>\nint main(void) { printf(\"%s %s %s\\n\", __DATE__, __TIME__, __FILE__); return 0; }\n")
        try tmp.write("recipes/hello.yaml", Self.hello(run: Self.compile))
        let (environment, repository) = (Self.runnerEnvironment(tmp), "\(registry.address)/ci/cache")
        let build = Self.runner(tmp)
        let first = try build("first", ["--cache-to", repository])
        #expect(first.stderr.contains("▸ Nov 14 2023"), "the step ran: \(first.stderr)")
        let digest = try #require(try KilnBinary.imageDigests(tmp.path + "/first")["hello:1"])

        let second = try build("second", ["--cache-from", repository])
        #expect(second.stderr.contains("hello-build: outputs from the cache"), "\(second.stderr)")
        #expect(!second.stderr.contains("▸ Nov 14"), "the compiler ran: \(second.stderr)")
        #expect(try KilnBinary.imageDigests(tmp.path + "/second")["hello:1"] == digest)

        // Poison the entry: its outputs.json now records another stamp than the archive holds.
        let transport = try HTTPTransport()
        defer { Task { await transport.shutdown() } }
        let client = RegistryClient(
            registry: registry.address, transport: transport,
            options: RegistryOptions(credentials: CredentialStore(environment: environment)))
        let cache = RegistryCache(repository: RegistryRepository(client: client, repository: "ci/cache"))
        let tag = try #require(try await client.tags("ci/cache").first { $0.hasPrefix("kiln-build-") })
        let key = String(tag.dropFirst("kiln-build-".count))
        guard case .hit(let entry) = try await cache.get(.build, key: key) else {
            Issue.record("the build entry is not found")
            return
        }
        var listing = try JSONDecoder().decode([String: String].self, from: entry.record)
        listing["/out/stamp"] = "644 " + Digest.sha256(Data("forged".utf8)).description
        try await cache.download(entry.blobs[0], to: tmp.path + "/outputs.tar.gz")
        try await cache.put(
            .build, key: key, record: try JSONEncoder().encode(listing),
            blobs: [(entry.blobs[0], tmp.path + "/outputs.tar.gz")])
        let third = try build("third", ["--cache-from", repository])
        #expect(third.stderr.contains("refused"), "\(third.stderr)")
        #expect(third.stderr.contains("▸ Nov 14 2023"), "the step ran here: \(third.stderr)")
        #expect(try KilnBinary.imageDigests(tmp.path + "/third")["hello:1"] == digest)
    }

    /// Issue 25's runner with nothing: its store, its download cache and `--sources` are empty, and the C program's
    /// source is a url archive only the first runner had. The plan's compile key hits the registry cache, so
    /// the second runner fetches neither the source nor the step's environment: no source, no package set, no
    /// compiler, and the same digest.
    @Test func aRunnerWithoutSourcesBuildsFromTheRegistryCacheFetchingNothingForTheStep() async throws {
        let registry = try RegistryServer(auth: .basic(user: "ci", password: "cache-pw"))
        let tmp = try TemporaryDirectory("kiln-srccache-url")
        defer {
            registry.stop()
            tmp.remove()
        }
        try tmp.write(
            "src/hello-src/hello.c",
            "#include <stdio.h>\nint main(void) { printf(\"%s %s\\n\", __DATE__, __TIME__); return 0; }\n")
        try FileManager.default.createDirectory(atPath: tmp.path + "/seeded", withIntermediateDirectories: true)
        try Shell.run(["tar", "-C", tmp.path + "/src", "-czf", tmp.path + "/seeded/hello-src.tar.gz", "hello-src"])
        let digest = Digest.sha256(try Data(contentsOf: URL(fileURLWithPath: tmp.path + "/seeded/hello-src.tar.gz")))
        let recipe = Self.hello(run: Self.compile).replacingOccurrences(
            of: "hello: {dir: hello}",
            with: "hello: {url: \"https://example.invalid/hello-src.tar.gz\", sha256: \"\(digest.encoded)\"}")
        try tmp.write("recipes/hello.yaml", recipe)
        let (environment, repository) = (Self.runnerEnvironment(tmp), "\(registry.address)/ci/cache")
        let build = Self.runner(tmp)
        let first = try build("first", ["--sources", tmp.path + "/seeded", "--cache-to", repository])
        #expect(first.stderr.contains("▸ Nov 14 2023"), "the step ran: \(first.stderr)")
        let image = try #require(try KilnBinary.imageDigests(tmp.path + "/first")["hello:1"])

        // Without --cache-from, the source is missing: the runner has nothing to build the step from.
        let stranded = try KilnBinary.run(
            ["build", tmp.path + "/recipes", "--store", tmp.path + "/stranded", "--cache-dir", tmp.path + "/dl-x"],
            environment: environment, check: false)
        #expect(!stranded.succeeded && stranded.stderr.contains("hello-src.tar.gz"), "\(stranded.stderr)")

        // The plan (`--dry-run --json`) already knows the step's key, now that the lock pins its environment.
        struct Plan: Decodable {
            struct Build: Decodable { var key: String? }
            var builds: [Build]
        }
        let planned = try KilnBinary.run(
            ["build", tmp.path + "/recipes", "--dry-run", "--json"], environment: environment)
        let key = try #require(try JSONDecoder().decode(Plan.self, from: Data(planned.stdout.utf8)).builds.first?.key)
        let text = try KilnBinary.run(["build", tmp.path + "/recipes", "--dry-run"], environment: environment).stdout
        #expect(
            text.contains("build step hello/hello-build  environment hello/build:hello-build  key \(key)"), "\(text)")

        // The registry has the step's outputs under the planned key, and its layer under the layer's plan key: the
        // layer is taken, so the outputs are not even fetched.
        let transport = try HTTPTransport()
        defer { Task { await transport.shutdown() } }
        let client = RegistryClient(
            registry: registry.address, transport: transport,
            options: RegistryOptions(credentials: CredentialStore(environment: environment)))
        #expect(try await client.tags("ci/cache").contains("kiln-build-" + key))
        let second = try build("second", ["--cache-from", repository])
        #expect(second.stderr.contains("hello-build: outputs not needed"), "\(second.stderr)")
        #expect(second.stdout.contains("(0 layers written"), "\(second.stdout)")
        #expect(!second.stderr.contains("▸ Nov 14"), "the compiler ran: \(second.stderr)")
        #expect(!second.stderr.contains("environment of"), "the environment was unpacked: \(second.stderr)")
        #expect(try KilnBinary.imageDigests(tmp.path + "/second")["hello:1"] == image)
        // Nothing was downloaded for the step: no .deb, no source archive, no extracted source tree.
        let downloaded = FileManager.default.enumerator(atPath: tmp.path + "/dl-second")?.allObjects ?? []
        #expect(
            !downloaded.contains { ($0 as? String)?.hasPrefix("sha256/") == true || ($0 as? String) == "sources" },
            "\(downloaded)")
    }

    /// A C program built in the sandbox shows SOURCE_DATE_EPOCH and the fixed source path; a rebuild does not
    /// start the compiler; a failing build prints its last lines, log and status, tags nothing and leaves the
    /// store usable.
    @Test func smallCProgramFixedDatesAndPathsNoOpRebuildAndFailure() throws {
        let tmp = try TemporaryDirectory("kiln-srcbuild")
        defer { tmp.remove() }
        try tmp.write(
            "recipes/hello/hello.c",
            "#include <stdio.h>\nint main(void) { printf(\"%s %s %s\\n\", __DATE__, __TIME__, __FILE__); return 0; }\n")
        try tmp.write("recipes/hello.yaml", Self.hello(run: Self.compile))
        let store = tmp.path + "/images"
        let environment = ["SOURCE_DATE_EPOCH": "1700000000", "KILN_DEBIAN_MIRROR": ""]
        let first = try KilnBinary.run(["build", tmp.path + "/recipes", "--store", store], environment: environment)
        // 1700000000 is 2023-11-14 22:13:20 UTC; the source is at /src/NAME whatever the checkout's path.
        #expect(first.stderr.contains("hello-build ▸ Nov 14 2023 22:13:20 /src/hello/hello.c"), "\(first.stderr)")
        let digest = try #require(try KilnBinary.imageDigests(store)["hello:1"])
        let lock = try String(contentsOfFile: tmp.path + "/recipes/kiln.lock", encoding: .utf8)
        #expect(lock.contains("\"hello/build:hello-build\"") && lock.contains("\"gcc\""))

        let again = try KilnBinary.run(["build", tmp.path + "/recipes", "--store", store], environment: environment)
        #expect(again.stderr.contains("hello-build: unchanged"))
        #expect(!again.stderr.contains("▸ Nov 14"), "the compiler ran again: \(again.stderr)")
        #expect(try KilnBinary.imageDigests(store)["hello:1"] == digest)

        // The same recipe from another directory gives the same image.
        try FileManager.default.copyItem(atPath: tmp.path + "/recipes", toPath: tmp.path + "/elsewhere")
        try KilnBinary.run(
            ["build", tmp.path + "/elsewhere", "--store", tmp.path + "/images2"], environment: environment)
        #expect(try KilnBinary.imageDigests(tmp.path + "/images2")["hello:1"] == digest)

        // --check-reproducible runs the step twice even though it is stored, and passes for this one...
        let checked = try KilnBinary.run(
            ["build", tmp.path + "/recipes", "--store", store, "--check-reproducible"], environment: environment)
        #expect(checked.stderr.contains("hello-build: reproducible (two runs, identical outputs)"))
        #expect(checked.stderr.components(separatedBy: "▸ Nov 14").count == 3)
        // ...and names the first differing file of one that is not.
        try tmp.write("random/hello/hello.c", "int main(void) { return 0; }\n")
        try tmp.write(
            "random/hello.yaml",
            Self.hello(run: "cc -o /out/hello /src/hello/hello.c\ncat /proc/sys/kernel/random/uuid > /out/stamp"))
        let random = try KilnBinary.run(
            ["build", tmp.path + "/random", "--store", tmp.path + "/random-images", "--check-reproducible"],
            environment: environment, check: false)
        #expect(random.status != 0)
        #expect(random.stderr.contains("build hello-build is not reproducible: /out/stamp differs"), "\(random.stderr)")
        #expect(try KilnBinary.imageDigests(tmp.path + "/random-images").isEmpty)

        // A failing build: new store, nothing tagged, the store still lists (and gc runs on it).
        try tmp.write(
            "broken/hello.yaml", Self.hello(run: "echo compiling\necho 'hello.c:1: error: no' >&2\nexit 4"))
        try tmp.write("broken/hello/hello.c", "int main(void) { return 0; }\n")
        let brokenStore = tmp.path + "/broken-images"
        try KilnBinary.run(["build", tmp.path + "/recipes", "--store", brokenStore], environment: environment)
        let failed = try KilnBinary.run(
            ["build", tmp.path + "/broken", "--store", brokenStore], environment: environment, check: false)
        #expect(failed.status != 0)
        #expect(failed.stderr.contains("build hello-build failed with exit status 4"), "\(failed.stderr)")
        #expect(failed.stderr.contains("  hello-build ▸ hello.c:1: error: no"))
        let logPath = try #require(
            failed.stderr.split(separator: "\n").first { $0.hasPrefix("full log: ") }.map { String($0.dropFirst(10)) })
        #expect(try String(contentsOfFile: logPath, encoding: .utf8) == "compiling\nhello.c:1: error: no\n")
        #expect(try KilnBinary.imageDigests(brokenStore) == ["hello:1": digest])
        try KilnBinary.run(["gc", "--store", brokenStore])
    }

    /// `kill -9` of kiln in the middle of a step: the sandbox dies with it, and the staging it left (written by
    /// the step's uid, with a directory the step made unreadable) is removed by `kiln gc` and by the next build.
    @Test func stagingOfAKilledBuildIsRemovedByGCAndByTheNextBuild() throws {
        let tmp = try TemporaryDirectory("kiln-srcbuild-kill")
        defer { tmp.remove() }
        try tmp.write("recipes/hello/hello.c", "int main(void) { return 0; }\n")
        try tmp.write(
            "recipes/hello.yaml",
            Self.hello(
                run: "mkdir -p /work/locked/in && echo x > /work/locked/in/f && chmod 000 /work/locked\n"
                    + "echo step-started\nsleep 900"))
        let store = tmp.path + "/images"
        let environment = ["KILN_DEBIAN_MIRROR": ""]
        func killMidStep() throws -> [String] {
            let log = tmp.path + "/kill-\(UUID().uuidString).log"
            let pid = try ChildProcess.spawn(
                [KilnBinary.path, "build", tmp.path + "/recipes", "--store", store], environment: environment,
                stdout: log, stderr: log)
            var started = false
            for _ in 0..<1200 where !started {
                started = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("▸ step-started")
                if !started { usleep(100_000) }
            }
            kill(pid, SIGKILL)
            _ = ChildProcess.wait(pid)
            #expect(started, "the step never started: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            return ((try? FileManager.default.contentsOfDirectory(atPath: store + "/builds")) ?? []).filter {
                $0.hasPrefix(".tmp-")
            }
        }
        #expect(try killMidStep().count == 1)
        // The sandbox's processes died with kiln (the step's sleep is gone). Under the full suite's load the
        // kernel takes its time tearing down the pid namespace (over 10 s once, over 60 s once with a
        // load average above 10): wait up to 240 s, still well below the step's 900 s sleep.
        var sleeping = "?"
        for _ in 0..<1200 where !sleeping.isEmpty {
            sleeping = try Shell.run(["sh", "-c", "pgrep -f '^sleep 900$' || true"]).stdout
            if !sleeping.isEmpty { usleep(200_000) }
        }
        #expect(sleeping.isEmpty, "the step outlived kiln: \(sleeping)")
        try KilnBinary.run(["gc", "--grace", "0", "--store", store])
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: store + "/builds").filter { $0.hasPrefix(".tmp-") }
                .isEmpty)

        #expect(try killMidStep().count == 1)
        try tmp.write("recipes/hello.yaml", Self.hello(run: Self.compile))
        try KilnBinary.run(["build", tmp.path + "/recipes", "--store", store], environment: environment)
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: store + "/builds").filter { $0.hasPrefix(".tmp-") }
                .isEmpty)
    }

    /// iguana from the real dPoW archive, built from two checkouts: identical images. podman runs it in its
    /// volume: iguana-start copies the image's `elected` into the volume and iguana keeps its state there, for
    /// the image's uid and for an arbitrary uid in group 0; a read-only mounted list is used as it is.
    @Test(.enabled(if: TestSources.runnable, Comment(rawValue: TestSources.skipReason)))
    func iguanaFromTheDPoWSourceIsReproducibleAndStarts() throws {
        let sources = try TestSources.directory()
        let tmp = try TemporaryDirectory("kiln-iguana")
        let podman = try Podman()
        defer {
            podman.cleanUp()
            tmp.remove()
        }
        var digests: [String] = []
        for checkout in ["a", "b/deeper"] {
            let recipes = tmp.path + "/\(checkout)/recipes"
            try FileManager.default.createDirectory(atPath: recipes, withIntermediateDirectories: true)
            for name in ["debian-runtime", "iguana-runtime", "iguana"] {
                try FileManager.default.copyItem(
                    atPath: KilnBinary.packageRoot + "/recipes/\(name).yaml", toPath: recipes + "/\(name).yaml")
            }
            try FileManager.default.copyItem(
                atPath: KilnBinary.packageRoot + "/recipes/iguana", toPath: recipes + "/iguana")
            let store = tmp.path + "/\(checkout)/images"
            let built = try KilnBinary.run(
                ["build", recipes, "--store", store, "--sources", sources], environment: ["KILN_DEBIAN_MIRROR": ""]
            )
            #expect(built.stderr.contains("iguana-build: built"))
            digests.append(try #require(try KilnBinary.imageDigests(store)["iguana:0.1.0"]))
        }
        // What was compiled is on record: the SBOM lists dPoW's commit and tree, the label names the commit.
        let sbom = try KilnBinary.run(["inspect", "iguana:0.1.0", "--sbom", "--store", tmp.path + "/a/images"]).stdout
        #expect(sbom.contains("git+https://github.com/KomodoPlatform/dPoW@2f846c0aa790516c49299914488623ecb31b1d2b"))
        #expect(sbom.contains("e8aa547cd2a9c0b418d1082bbabbe4f75aad79a2"), "the tree id: \(sbom.prefix(2000))")
        #expect(digests[0] == digests[1])

        let image = "oci:\(tmp.path)/a/images:iguana:0.1.0"
        for (volume, user) in [("iguana-own", [String]()), ("iguana-arbitrary", ["--user", "123456:0"])] {
            let started = try podman.run(
                image, extra: ["--timeout", "8", "-v", "\(volume):/home/iguana/.iguana"] + user, check: false)
            let output = started.stdout + started.stderr
            #expect(output.contains("iguana-start: running in /home/iguana/.iguana"), "\(output.suffix(2000))")
            #expect(output.contains("numnotaries 64"), "\(output.suffix(2000))")
            #expect(output.contains("iguana_rpcloop 127.0.0.1:7778"), "\(output.suffix(2000))")
            // What iguana wrote is in the volume, not in the container's discarded layer.
            let mountpoint = try podman.podman(["volume", "inspect", "--format", "{{.Mountpoint}}", volume])
                .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let kept = try FileManager.default.contentsOfDirectory(atPath: mountpoint)
            #expect(kept.contains("elected") && kept.contains("3rd_party"), "\(kept)")
            #expect(kept.contains("DB"), "iguana's state is not in its volume: \(kept)")
        }
        // Notary mode (IGUANA_MODE): iguana-start gives iguana the node's IP (myipaddr) and the seeds of `elected`
        // (addnotary) through its RPC, and iguana listens on what deploy-refs publishes for that mode: the notary
        // network of `elected`, and its RPC on the loopback only. It stops on SIGTERM within seconds (iguana-start forwards it).
        defer { _ = try? podman.podman(["rm", "-f", "-t", "0", "notary"], check: false) }
        _ = try podman.podman([
            "run", "-d", "--name", "notary", "--network=none", "-e", "IGUANA_MODE=notary", "-e", "IGUANA_IP=127.0.0.1",
            "-v", "iguana-notary:/home/iguana/.iguana", image,
        ])
        var listening = ""
        for _ in 0..<60 {
            listening = try podman.podman(["exec", "notary", "/bin/busybox", "netstat", "-ltn"], check: false).stdout
            if listening.contains(":13848 ") && listening.contains("127.0.0.1:7776 ") { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        let notaryLog = try podman.podman(["logs", "notary"], check: false)
        #expect(
            listening.contains(":13848 ") && listening.contains("127.0.0.1:7776 "),
            "\(listening)\n\((notaryLog.stdout + notaryLog.stderr).suffix(3000))")
        #expect(!listening.contains("0.0.0.0:7776"), "RPC on the loopback only")
        #expect((notaryLog.stdout + notaryLog.stderr).contains("iguana-start: notary IP 127.0.0.1"))
        #expect((notaryLog.stdout + notaryLog.stderr).contains("iguana-start: added the notary seeds of elected"))
        let began = Date()
        _ = try podman.podman(["stop", "-t", "60", "notary"])
        #expect(Date().timeIntervalSince(began) < 10, "iguana stops on SIGTERM")

        // An operator's own list, mounted read-only, is used instead of the image's.
        try tmp.write("elected", "not a notary list")
        let mounted = try podman.run(
            image,
            extra: [
                "--timeout", "8", "-v", "iguana-mounted:/home/iguana/.iguana",
                "-v", "\(tmp.path)/elected:/home/iguana/.iguana/elected:ro",
            ], check: false)
        let output = mounted.stdout + mounted.stderr
        #expect(output.contains("iguana-start: using the mounted /home/iguana/.iguana/elected"), "\(output)")
        #expect(!output.contains("numnotaries 64"), "\(output.suffix(2000))")
    }
}
