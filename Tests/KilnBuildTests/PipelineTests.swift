import Foundation
import KilnOCI
import KilnRecipe
import KilnStore
import KilnTestSupport
import Synchronization
import Testing

@testable import KilnBuild

/// The stages called directly: what the plan says, what prepare refuses, what a running build keeps.
@Suite struct PipelineTests {
    static let debHex = String(repeating: "ab", count: 32)

    static func lockJSON(packages: String = "", inputs: String = "") -> String {
        """
        {"lockVersion": 1, "inputs": {\(inputs)}, "images": {},
         "packages": {\(packages)},
         "packageRequests": {"app/runtime": "bookworm main amd64: a b"}}
        """
    }

    static let pins = """
        "app/runtime": [
          {"name": "b", "version": "2", "architecture": "amd64", "sha256": "\(debHex)", "filename": "pool/b.deb"},
          {"name": "a", "version": "1", "architecture": "all", "sha256": "\(String(repeating: "cd", count: 32))", "filename": "pool/a.deb"}]
        """

    static func recipes(in dir: TemporaryDirectory, mirror: String = "http://127.0.0.1:9") throws -> [Recipe] {
        let yaml = """
            name: app
            version: "1"
            users:
              - {name: svc, uid: 1000, gid: 1000, home: /home/svc}
            layers:
              - name: runtime
                packages:
                  suite: bookworm
                  mirror: \(mirror)
                  packages: [a, b]
                  split: per-package
              - name: config
                files:
                  - {path: /etc/app.conf, content: "x = 1"}
            """
        let file = try dir.write("recipes/app.yaml", yaml)
        let (recipes, problems) = RecipeSet.parse(yaml, file: file)
        try #require(problems.isEmpty, "\(problems)")
        return recipes
    }

    @Test func planListsEveryLayerWithTheDigestsRecipeAndLockKnow() async throws {
        try await withTemporaryDirectory("kiln-plan") { dir in
            let lockPath = try dir.write("recipes/kiln.lock", Self.lockJSON(packages: Self.pins))
            let plan = try Pipeline.plan(
                Self.recipes(in: dir), lock: LockFile.load(lockPath), lockPath: lockPath,
                options: BuildOptions(sourceDateEpoch: 0))
            let layers = try #require(plan.images.first?.platforms.first?.layers)
            // Split per package (sorted), the recipe's other layer, then the accounts layer.
            #expect(layers.map(\.name) == ["runtime/a", "runtime/b", "config", "accounts"])
            #expect(layers.map(\.kind) == [.package, .package, .layer, .accounts])
            #expect(layers[1].items.first?.sha256 == (try Digest(sha256Hex: Self.debHex)))
            #expect(layers[1].items.first?.version == "2")
            #expect(layers[2].items.first?.sha256 == Digest.sha256("x = 1"))
            let passwd = try #require(layers[3].items.first { $0.path == "/etc/passwd" })
            let expected = Accounts.passwd([.init(name: "svc", uid: 1000, gid: 1000, home: "/home/svc")])
            #expect(passwd.sha256 == Digest.sha256(expected))
            #expect(plan.packageSets.map(\.source) == [.lock])

            // The plan is a value: it survives a round trip through its JSON (what --dry-run --json prints).
            let json = try CanonicalJSON.encode(plan)
            let decoded = try JSONDecoder().decode(BuildPlan.self, from: json)
            #expect(try CanonicalJSON.encode(decoded) == json)
            #expect(decoded.images[0].platforms[0].layers == layers)

            // A changed request is resolved again: the split layers are pending until prepare.
            var changed = try LockFile.load(lockPath)
            changed.packageRequests["app/runtime"] = "bookworm main amd64: a"
            let replanned = try Pipeline.plan(
                Self.recipes(in: dir), lock: changed, lockPath: lockPath, options: BuildOptions(sourceDateEpoch: 0))
            #expect(replanned.images[0].platforms[0].layers.map(\.name) == ["runtime/*", "config", "accounts"])
            #expect(replanned.packageSets.map(\.source) == [.resolve])
        }
    }

    @Test func buildWritesExactlyThePlannedLayers() async throws {
        try await withTemporaryDirectory("kiln-planbuild") { dir in
            let yaml = """
                name: svc
                version: "1"
                groups:
                  - {name: ops, gid: 500}
                users:
                  - {name: svc, uid: 1000, gid: 500, home: /srv}
                layers:
                  - name: files
                    add:
                      - {src: data, to: /data/}
                """
            try dir.write("r/data/a.txt", "a\n")
            let file = try dir.write("r/svc.yaml", yaml)
            let (recipes, problems) = RecipeSet.parse(yaml, file: file)
            try #require(problems.isEmpty)
            let store = dir.path + "/images"
            let plan = try Pipeline.plan(
                recipes, lock: LockFile(), lockPath: dir.path + "/r/kiln.lock",
                options: BuildOptions(sourceDateEpoch: 0))
            let prepared = try await Pipeline.prepare(plan, store: store)
            let built = try await Pipeline.build(prepared, into: OCILayout(root: store))
            #expect(built.map(\.name) == ["svc"])
            #expect(built[0].layers.map(\.name) == plan.images[0].platforms[0].layers.map(\.name))
            #expect(built[0].layers.map(\.name) == ["files", "accounts"])
            #expect(built[0].references == plan.images[0].references)
            // No lock existed and nothing was resolved: record keeps none.
            #expect(try Pipeline.record(prepared, results: built) == nil)
            #expect(!FileManager.default.fileExists(atPath: dir.path + "/r/kiln.lock"))
        }
    }

    @Test func malformedDigestsInTheLockAreRefusedNamingTheEntry() async throws {
        try await withTemporaryDirectory("kiln-badlock") { dir in
            let badInput = try dir.write(
                "a/kiln.lock", Self.lockJSON(inputs: #""https://example.invalid/x.zip": "sha256:1234""#))
            #expect {
                try LockFile.load(badInput)
            } throws: { error in
                let text = "\(error)"
                return text.contains(badInput) && text.contains("inputs[\"https://example.invalid/x.zip\"]")
                    && text.contains("'sha256:1234'") && text.contains("kiln lock")
            }
            let badPackage = try dir.write(
                "b/kiln.lock", Self.lockJSON(packages: Self.pins.replacingOccurrences(of: Self.debHex, with: "XYZ")))
            #expect {
                try LockFile.load(badPackage)
            } throws: { error in
                let text = "\(error)"
                return text.contains(badPackage) && text.contains("packages \"app/runtime\" b 2")
                    && text.contains("'XYZ'")
            }
            // A well-formed lock still loads.
            let good = try dir.write("c/kiln.lock", Self.lockJSON(packages: Self.pins))
            #expect(try LockFile.load(good).packages["app/runtime"]?.count == 2)
        }
    }

    @Test func offlineNeverOpensAConnection() async throws {
        try await withTemporaryDirectory("kiln-offline") { dir in
            let listener = try Listener()
            defer { listener.close() }
            let lockPath = try dir.write("recipes/kiln.lock", Self.lockJSON(packages: Self.pins))
            let recipes = try Self.recipes(in: dir, mirror: "http://127.0.0.1:\(listener.port)")
            var options = BuildOptions(sourceDateEpoch: 0, inputs: InputOptions(offline: true))
            options.environment = ["KILN_CACHE_DIR": dir.path + "/cache"]
            for mode in [LockMode.locked, .update, .refresh] {
                options.lockMode = mode
                var lock = try LockFile.load(lockPath)
                // `.update` with a request the lock does not match must resolve: offline, it may not.
                if mode == .update { lock.packageRequests["app/runtime"] = "changed" }
                let plan = try Pipeline.plan(recipes, lock: lock, lockPath: lockPath, options: options)
                let started = Date()
                await #expect {
                    _ = try await Pipeline.prepare(plan, store: dir.path + "/images")
                } throws: { error in
                    "\(error)".contains("--offline") && "\(error)".contains("app.yaml:")
                }
                #expect(Date().timeIntervalSince(started) < 5, "\(mode)")
            }
            #expect(listener.acceptedConnections() == 0)
        }
    }

    @Test func symlinkedDirectoryLeadingOutsideTheRecipeIsRefused() async throws {
        try await withTemporaryDirectory("kiln-symlink") { dir in
            try dir.write("outside/etc/shadow", "root:secret\n")
            try dir.write("recipes/inside/ok.txt", "fine\n")
            try FileManager.default.createDirectory(
                atPath: dir.path + "/recipes/lnk", withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(
                atPath: dir.path + "/recipes/lnk/etc", withDestinationPath: dir.path + "/outside/etc")
            // A symlink inside the recipe directory that stays inside is fine.
            try FileManager.default.createSymbolicLink(
                atPath: dir.path + "/recipes/alias", withDestinationPath: dir.path + "/recipes/inside")
            for src in ["lnk/etc/shadow", "lnk/etc/*", "lnk/etc/"] {
                let yaml = """
                    name: leak
                    version: "1"
                    layers:
                      - name: l
                        add:
                          - {src: "alias/ok.txt", to: /ok.txt}
                          - {src: "\(src)", to: /x/}
                    """
                let file = try dir.write("recipes/leak.yaml", yaml)
                let (recipes, problems) = RecipeSet.parse(yaml, file: file)
                try #require(problems.isEmpty)
                let plan = try Pipeline.plan(
                    recipes, lock: LockFile(), lockPath: dir.path + "/recipes/kiln.lock",
                    options: BuildOptions(sourceDateEpoch: 0))
                await #expect {
                    _ = try await Pipeline.prepare(plan, store: dir.path + "/images")
                } throws: { error in
                    let text = "\(error)"
                    return text.contains("leak.yaml:7:") && text.contains("outside the recipe directory")
                        && text.contains("/recipes/lnk/etc") && !text.contains("ok.txt")
                }
            }
            #expect(!FileManager.default.fileExists(atPath: dir.path + "/images"))
        }
    }

    @Test func garbageCollectionDuringABuildKeepsWhatItWillReference() async throws {
        try await withTemporaryDirectory("kiln-gcrace") { dir in
            try dir.write("r/data/a.txt", "a\n")
            try dir.write("r/two.txt", "2")
            // Layers one and two hold local files, keyed from their content as they are written until the store
            // knows the files; layer three is keyed by the plan, so it is found, and kept from gc, before the
            // build starts.
            let yaml = """
                name: gc
                version: "1"
                layers:
                  - name: one
                    add:
                      - {src: data, to: /data/}
                  - name: two
                    add:
                      - {src: two.txt, to: /etc/two}
                  - name: three
                    files:
                      - {path: /etc/three, content: "3"}
                """
            let file = try dir.write("r/gc.yaml", yaml)
            let (recipes, problems) = RecipeSet.parse(yaml, file: file)
            try #require(problems.isEmpty)
            let store = dir.path + "/images"
            let layout = try OCILayout(root: store)
            let plan = try Pipeline.plan(
                recipes, lock: LockFile(), lockPath: dir.path + "/r/kiln.lock",
                options: BuildOptions(sourceDateEpoch: 0))
            // `kiln gc --grace 0` after each layer: with nothing tagged yet, only the build's roots keep its blobs.
            let swept = Mutex(0)
            let sweep: @Sendable (BuildEvent) -> Void = { event in
                switch event {
                case .layerBuilt, .layerReused:
                    _ = try? layout.collectGarbage(dryRun: false, graceSeconds: 0)
                    swept.withLock { $0 += 1 }
                default: break
                }
            }
            // Round 1 (no lookup by plan key) reuses layer one; the sweep after it removes the untagged blobs of
            // layers two and three (this build had not asked for them yet), so they are written again rather than
            // trusted. Round 2 finds layer three by its plan key (it survives every sweep), while layers one and two,
            // whose files the store now knows, are not under their plan keys yet: layer two is written again. By
            // round 3 every layer is found by its plan key before the build starts, and none is written.
            let expected = [[false, false, false], [true, false, false], [true, false, true], [true, true, true]]
            for round in expected.indices {
                let prepared = try await Pipeline.prepare(plan, store: store, reuseOutputs: round != 1)
                let built = try await Pipeline.build(prepared, into: layout, events: sweep)
                #expect(built[0].layers.map(\.reused) == expected[round], "round \(round): \(built[0].layers)")
                let image = try #require(try layout.images(for: layout.resolve("gc:1")).first)
                for layer in image.manifest.layers { #expect(layout.hasBlob(layer.digest), "round \(round)") }
                #expect(layout.hasBlob(image.manifest.config.digest))
                // Untagged again: the second round reuses the cached layers while gc sweeps.
                #expect(try layout.untag("gc:1"))
            }
            #expect(swept.withLock { $0 } == 12)
            // Finished builds leave no roots behind.
            let roots =
                (try? FileManager.default.contentsOfDirectory(atPath: layout.privateDirectory + "/builds")) ?? []
            #expect(roots.isEmpty)
        }
    }

    /// A `dirs:` entry for a user's home wins: the accounts layer (the last one) leaves that directory alone, so
    /// the entry's mode and owner are what the image has, not the accounts layer's 0755.
    @Test func dirsEntryForAHomeDirectoryWinsOverTheAccountsLayer() async throws {
        try await withTemporaryDirectory("kiln-home") { dir in
            let yaml = """
                name: app
                version: "1"
                users:
                  - {name: svc, uid: 1000, gid: 1000, home: /home/svc}
                  - {name: other, uid: 1001, gid: 1001, home: /home/other}
                layers:
                  - name: data
                    dirs:
                      - {path: /home/svc/, mode: "0750", uid: 1000, gid: 1000}
                """
            let file = try dir.write("recipes/app.yaml", yaml)
            let (recipes, problems) = RecipeSet.parse(yaml, file: file)
            try #require(problems.isEmpty, "\(problems)")
            let entries = try #require(Accounts.entries(for: recipes[0], chain: recipes))
            #expect(!entries.contains { $0.path.hasPrefix("/home/svc") }, "the dirs: entry decides /home/svc")
            let other = try #require(entries.first { $0.path == "/home/other" })
            #expect(other.mode == 0o755 && other.uid == 1001)
            // The plan shows it the same way: /home/svc only in the data layer.
            let plan = try Pipeline.plan(
                recipes, lock: LockFile(), lockPath: dir.path + "/recipes/kiln.lock",
                options: BuildOptions(sourceDateEpoch: 0))
            let layers = try #require(plan.images.first?.platforms.first?.layers)
            #expect(layers.map(\.name) == ["data", "accounts"])
        }
    }
}

/// A TCP port that accepts nothing itself: connections a client opens wait in its backlog and are counted.
final class Listener: @unchecked Sendable {
    let fd: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 64) == 0
            }
        }
        try #require(bound)
        _ = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        self.fd = fd
        port = UInt16(bigEndian: address.sin_port)
    }

    func acceptedConnections() -> Int {
        var count = 0
        while true {
            let client = accept(fd, nil, nil)
            guard client >= 0 else { return count }
            count += 1
            Glibc.close(client)
        }
    }

    func close() { Glibc.close(fd) }
}
