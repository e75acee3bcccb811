import Foundation
import KilnHTTP
import KilnOCI
import KilnRegistry
import KilnTestSupport
import Testing

/// Issue 25's runner with nothing, for layers: layers keyed by the plan are looked up in `--cache-from` before
/// prepare fetches anything, so a second store with an empty download cache and the Debian mirror out of reach
/// builds a recipe with a package set (beside a local file, as recipes' start layers have it), a url input and
/// a build step without downloading, unpacking or running anything, to the same image and SBOM digests.
@Suite(.serialized) struct PlanKeyCacheTests {
    static func recipe(url: String, sha256: String) -> String {
        """
        name: planned
        version: "1"
        builds:
          - name: stamp
            environment:
              suite: bookworm
              packages: [dash]
            run: |
              echo planned-step-ran
              echo stamped > /out/stamp
            outputs: [/out/stamp]
        layers:
          - name: debs
            packages:
              suite: bookworm
              packages: [busybox-static]
            add:
              - {src: start.sh, to: /usr/local/bin/start, mode: "0755"}
          - name: tool
            add:
              - {url: "\(url)", sha256: "\(sha256)", extract: ["tool/*"], to: /opt/}
              - {from: stamp, src: stamp, to: /etc/stamp}
        """
    }

    /// The store's SBOM artifacts by the image manifest they describe.
    static func sboms(_ store: String) throws -> [String: String] {
        struct Index: Decodable {
            struct Entry: Decodable {
                var digest: String
                var annotations: [String: String]?
            }
            var manifests: [Entry]
        }
        let index = try JSONDecoder().decode(
            Index.self, from: Data(contentsOf: URL(fileURLWithPath: store + "/index.json")))
        var result: [String: String] = [:]
        for entry in index.manifests {
            if let subject = entry.annotations?["dev.kiln.sbom.subject"] { result[subject] = entry.digest }
        }
        return result
    }

    /// Every regular file under `directory` (none when it does not exist).
    static func files(under directory: String) -> [String] {
        let all = FileManager.default.enumerator(atPath: directory)?.allObjects as? [String] ?? []
        return all.filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: directory + "/" + path, isDirectory: &isDirectory)
                && !isDirectory.boolValue
        }
    }

    @Test func aRunnerWithNothingBuildsPackagesAUrlInputAndAStepFromPlanKeys() async throws {
        let registry = try RegistryServer(auth: .basic(user: "ci", password: "cache-pw"))
        let tmp = try TemporaryDirectory("kiln-plankeys")
        try tmp.write("www/src/tool/run.sh", "#!/bin/sh\necho tool\n")
        try Shell.run(["tar", "-C", tmp.path + "/www/src", "-czf", tmp.path + "/www/tool.tar.gz", "tool"])
        let server = try StaticFileServer(root: tmp.path + "/www", log: tmp.path + "/www.log")
        defer {
            server.stop()
            registry.stop()
            tmp.remove()
        }
        let archive = Digest.sha256(try Data(contentsOf: URL(fileURLWithPath: tmp.path + "/www/tool.tar.gz")))
        try tmp.write("recipes/start.sh", "#!/bin/sh\nexec /opt/tool/run.sh\n")
        try tmp.write("recipes/planned.yaml", Self.recipe(url: server.url + "/tool.tar.gz", sha256: archive.encoded))
        let repository = "\(registry.address)/ci/cache"
        // The mirror out of reach with its address unchanged (the SBOM names it): every request but those to
        // 127.0.0.1 (the registry, the url server) goes to a closed port.
        var unreachable = SourceBuildTests.runnerEnvironment(tmp)
        unreachable["http_proxy"] = "http://127.0.0.1:\(try freePort())"
        unreachable["https_proxy"] = unreachable["http_proxy"]
        unreachable["no_proxy"] = "127.0.0.1"
        func build(_ name: String, _ extra: [String], environment: [String: String], check: Bool = true) throws
            -> CommandResult
        {
            try KilnBinary.run(
                [
                    "build", tmp.path + "/recipes", "--store", tmp.path + "/" + name, "--cache-dir",
                    tmp.path + "/dl-" + name,
                ] + extra, environment: environment, check: check)
        }
        let first = try build(
            "first", ["--cache-to", repository], environment: SourceBuildTests.runnerEnvironment(tmp))
        #expect(first.stderr.contains("planned-step-ran"), "the step ran: \(first.stderr)")
        let image = try #require(try KilnBinary.imageDigests(tmp.path + "/first")["planned:1"])
        let sbom = try #require(try Self.sboms(tmp.path + "/first")[image])

        // The plan (now that the first runner's lock pins the set and the step's environment) prints the url
        // layer's key, the key the registry has its entry under; the package layer, with its local file, is keyed
        // by prepare.
        struct Plan: Decodable {
            struct Image: Decodable {
                struct Platform: Decodable {
                    struct Layer: Decodable { var key: String? }
                    var layers: [Layer]
                }
                var platforms: [Platform]
            }
            var images: [Image]
        }
        let printed = try KilnBinary.run(
            ["build", tmp.path + "/recipes", "--dry-run", "--json"], environment: unreachable)
        let keys = try JSONDecoder().decode(Plan.self, from: Data(printed.stdout.utf8)).images[0].platforms[0].layers
            .compactMap(\.key)
        #expect(keys.count == 1, "\(printed.stdout)")
        let transport = try HTTPTransport()
        defer { Task { await transport.shutdown() } }
        let client = RegistryClient(
            registry: registry.address, transport: transport,
            options: RegistryOptions(credentials: CredentialStore(environment: unreachable)))
        let tags = Set(try await client.tags("ci/cache"))
        #expect(keys.allSatisfy { tags.contains("kiln-layer-" + $0) }, "\(keys) not in \(tags)")

        // The premise: with this environment the mirror cannot be reached.
        let stranded = try build("stranded", [], environment: unreachable, check: false)
        #expect(!stranded.succeeded, "the mirror was reachable: \(stranded.stderr)")
        let served = server.requests.count

        let second = try build("second", ["--cache-from", repository], environment: unreachable)
        #expect(try KilnBinary.imageDigests(tmp.path + "/second")["planned:1"] == image)
        #expect(try Self.sboms(tmp.path + "/second")[image] == sbom, "the SBOM differs")
        #expect(second.stdout.contains("(0 layers written"), "\(second.stdout)")
        #expect(!second.stderr.contains("planned-step-ran"), "the step ran: \(second.stderr)")
        // The step's outputs are only in a layer that came from the cache: they are not fetched either.
        #expect(second.stderr.contains("stamp: outputs not needed"), "\(second.stderr)")
        #expect(server.requests.count == served, "the url input was downloaded: \(server.requests)")
        #expect(Self.files(under: tmp.path + "/dl-second").isEmpty, "\(Self.files(under: tmp.path + "/dl-second"))")

        // A poisoned plan-keyed entry (the url layer's record with the package layer's blob) is refused with a
        // warning and the layer built here, from the url input and the step's cached outputs. Its entry under
        // the content key is poisoned alike, or the build would take that one.
        let cache = RegistryCache(repository: RegistryRepository(client: client, repository: "ci/cache"))
        guard case .hit(let tool) = try await cache.get(.layer, key: keys[0]) else {
            Issue.record("the plan-keyed entry is not found")
            return
        }
        var entries: [(key: String, entry: RegistryCache.Entry)] = []
        for tag in tags where tag.hasPrefix("kiln-layer-") {
            let key = String(tag.dropFirst("kiln-layer-".count))
            if case .hit(let entry) = try await cache.get(.layer, key: key) { entries.append((key, entry)) }
        }
        #expect(entries.count == 4, "each layer under its plan key and its content key: \(tags)")
        let blob = try #require(entries.first { $0.entry.record != tool.record }?.entry.blobs[0])
        for (key, entry) in entries where entry.record == tool.record {
            try await cache.put(
                .layer, key: key, record: entry.record,
                blobs: [(blob, tmp.path + "/first/blobs/sha256/" + blob.digest.encoded)])
        }
        let third = try build("third", ["--cache-from", repository], environment: unreachable)
        #expect(third.stderr.contains("refused"), "\(third.stderr)")
        #expect(third.stdout.contains("(1 layers written"), "\(third.stdout)")
        #expect(server.requests.count == served + 1, "\(server.requests)")
        #expect(try KilnBinary.imageDigests(tmp.path + "/third")["planned:1"] == image)
        #expect(try Self.sboms(tmp.path + "/third")[image] == sbom)

        // A lock written before `source` was recorded still builds: the SBOM reads the source packages from
        // the unpacked .debs, and it is the same document.
        let lockPath = tmp.path + "/recipes/kiln.lock"
        let lock = try String(contentsOfFile: lockPath, encoding: .utf8)
        #expect(lock.contains("\"source\""), "kiln lock records source packages: \(lock)")
        let old = lock.split(separator: "\n").filter { !$0.contains("\"source\"") }.joined(separator: "\n")
        #expect(old.count < lock.count)
        try old.write(toFile: lockPath, atomically: true, encoding: .utf8)
        _ = try build(
            "fourth", ["--cache-from", repository], environment: SourceBuildTests.runnerEnvironment(tmp))
        #expect(try KilnBinary.imageDigests(tmp.path + "/fourth")["planned:1"] == image)
        #expect(try Self.sboms(tmp.path + "/fourth")[image] == sbom)
        // Fetching the set from the mirror taught the lock its source packages again, versions unchanged (the
        // step's environment, not fetched, stays as it was).
        struct Lock: Decodable {
            struct Pin: Decodable {
                var name: String
                var version: String
                var source: String?
                var sha256: String
            }
            var packages: [String: [Pin]]
        }
        let before = try JSONDecoder().decode(Lock.self, from: Data(lock.utf8)).packages
        let after = try JSONDecoder().decode(Lock.self, from: Data(contentsOf: URL(fileURLWithPath: lockPath))).packages
        #expect(after["planned/debs"]?.map(\.source) == before["planned/debs"]?.map(\.source), "\(after)")
        #expect(after["planned/debs"]?.map(\.version) == before["planned/debs"]?.map(\.version))
        let debs = try #require(before["planned/debs"])
        #expect(
            debs.allSatisfy { FileManager.default.fileExists(atPath: tmp.path + "/dl-fourth/sha256/" + $0.sha256) },
            "the old lock's set was not fetched: \(Self.files(under: tmp.path + "/dl-fourth"))")
        #expect(after["planned/build:stamp"]?.allSatisfy { $0.source == nil } == true, "\(after)")
        // With every .deb already downloaded the index is not read: the SBOM takes the source packages from the
        // unpacked .debs, and it is still the same document.
        try old.write(toFile: lockPath, atomically: true, encoding: .utf8)
        try KilnBinary.run(
            [
                "build", tmp.path + "/recipes", "--store", tmp.path + "/fifth", "--cache-dir", tmp.path + "/dl-fourth",
                "--cache-from", repository,
            ], environment: unreachable)
        #expect(try Self.sboms(tmp.path + "/fifth")[image] == sbom, "the SBOM from unpacked .debs differs")
        #expect(try String(contentsOfFile: lockPath, encoding: .utf8) == old, "the lock learnt nothing offline")

        // A substitution no check can see: the url layer's keys now give another sound layer (the package
        // layer's record and blob). Which layer a key maps to cannot be checked without building it, so a plain
        // build would take it; `--locked` (README, Security model) refuses the image it makes, whose digest is
        // not the lock's, and tags nothing.
        try lock.write(toFile: lockPath, atomically: true, encoding: .utf8)
        let other = try #require(entries.first { $0.entry.record != tool.record }?.entry)
        for (key, entry) in entries where entry.record == tool.record {
            try await cache.put(
                .layer, key: key, record: other.record,
                blobs: [(blob, tmp.path + "/first/blobs/sha256/" + blob.digest.encoded)])
        }
        let substituted = try build(
            "sixth", ["--cache-from", repository, "--locked"], environment: unreachable, check: false)
        #expect(!substituted.succeeded, "\(substituted.stdout)")
        #expect(substituted.stderr.contains("but the lock records"), "\(substituted.stderr)")
        #expect(substituted.stderr.contains("nothing was tagged"), "\(substituted.stderr)")
        #expect(try KilnBinary.imageDigests(tmp.path + "/sixth").isEmpty)
    }
}
