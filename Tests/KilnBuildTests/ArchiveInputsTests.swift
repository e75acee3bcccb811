import Foundation
import KilnLayer
import KilnOCI
import KilnRecipe
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnBuild

/// `extract:` inputs end to end through the builder's entry point: only what is asked is unpacked, once,
/// synced once; setuid bits need the recipe's consent; limits and refusals name the recipe line.
@Suite struct ArchiveInputsTests {
    struct Fixture {
        let tmp: TemporaryDirectory
        let cache: DownloadCache
        let url = "https://example.invalid/release.tar.gz"
        var digest: Digest

        /// A fixture in a temporary directory of its own, removed after `body`.
        static func with<T>(_ script: String, _ body: (Fixture) async throws -> T) async throws -> T {
            try await withTemporaryDirectory("kiln-extract") { try await body(Fixture(script, in: $0)) }
        }

        /// `script` writes the archive to `out` (Python, tarfile/gzip/io imported, `add(t, name, data, mode)`).
        init(_ script: String, in tmp: TemporaryDirectory) throws {
            self.tmp = tmp
            cache = DownloadCache(root: tmp.path + "/cache")
            let prelude = """
                import tarfile, gzip, io, sys
                out = sys.argv[1]
                def add(t, name, data=b'', mode=0o644):
                    i = tarfile.TarInfo(name); i.size = len(data); i.mode = mode
                    t.addfile(i, io.BytesIO(data))

                """
            try (prelude + script).write(toFile: tmp.path + "/make.py", atomically: true, encoding: .utf8)
            try Shell.run(["python3", tmp.path + "/make.py", tmp.path + "/release.tar.gz"])
            digest = try VerifyingReader.digest(of: tmp.path + "/release.tar.gz").digest
            #expect(try cache.adopt(file: tmp.path + "/release.tar.gz", as: digest))
        }

        /// The layer entries of a one-layer recipe whose add entry has `keys` (YAML, indented for the entry).
        func entries(_ keys: String) throws -> [LayerEntry] {
            let yaml = """
                name: a
                version: "1"
                layers:
                  - name: l
                    add:
                      - url: \(url)
                        sha256: \(digest.encoded)
                \(keys.split(separator: "\n").map { "        " + $0 }.joined(separator: "\n"))
                """
            let (recipes, problems) = RecipeSet.parse(yaml, file: tmp.path + "/a.yaml")
            try #require(problems.isEmpty, "\(problems)")
            let layout = try OCILayout(root: tmp.path + "/store")
            var options = BuildOptions(sourceDateEpoch: 0)
            options.inputs = InputOptions(cache: cache)
            let plan = try Pipeline.plan(recipes, lock: LockFile(), lockPath: tmp.path + "/kiln.lock", options: options)
            let prepared = PreparedInputs(plan: plan, inputs: [url: digest], packages: [:], resolved: [:])
            let builder = try Builder(layout: layout, prepared: prepared, events: { _ in })
            // The layer as planned: its one content is the download, placed as the recipe says.
            let layer = try #require(plan.images.first?.platforms.first?.layers.first)
            var unpacked: Builder.Unpacked = [:]
            return try builder.entries(layer, platform: recipes[0].platforms[0], unpacked: &unpacked).0
        }
    }

    /// 100,000 empty members and one wanted file: seconds, not minutes, and only that file lands on disk.
    @Test func manyMembersOnlyWhatIsAskedIsUnpacked() async throws {
        try await Fixture.with(
            """
            with tarfile.open(out, 'w:gz') as t:
                for n in range(100000): add(t, 'empty/%06d' % n)
                add(t, 'bin/tool', b'#!/bin/sh\\n', 0o755)
            """
        ) { f in
            let started = Date()
            let entries = try f.entries("extract: [tool]\nto: /usr/bin/")
            let seconds = Date().timeIntervalSince(started)
            #expect(seconds < 30, "took \(seconds) s")
            #expect(entries.map(\.path) == ["/usr/bin/tool"])
            let slots = try FileManager.default.contentsOfDirectory(atPath: f.cache.root + "/extracted-v2")
            #expect(slots.count == 1)
            let tree = f.cache.root + "/extracted-v2/" + slots[0] + "/tree"
            #expect(try FileManager.default.subpathsOfDirectory(atPath: tree).sorted() == ["bin", "bin/tool"])
        }
    }

    @Test func setuidAndSetgidNeedTheRecipesMode() async throws {
        // Spelled out: a closure whose only `try`s sit inside #expect is not inferred to throw.
        try await Fixture.with(
            """
            with tarfile.open(out, 'w:gz') as t:
                add(t, 'bin/tool', b'x', 0o6755)
            """
        ) { (f) throws in
            #expect(try f.entries("extract: [tool]\nto: /usr/bin/tool").map(\.mode) == [0o755])
            #expect(try f.entries("extract: [tool]\nto: /usr/bin/tool\nmode: \"4755\"").map(\.mode) == [0o4755])
        }
    }

    @Test func aDeepPathIsRefusedAtTheRecipeLine() async throws {
        try await Fixture.with(
            """
            with tarfile.open(out, 'w:gz', format=tarfile.PAX_FORMAT) as t:
                add(t, 'bin/tool', b'x')
                add(t, 'a/' * 2000 + 'f')
            """
        ) { (f) throws -> Void in
            #expect {
                _ = try f.entries("extract: [tool]\nto: /usr/bin/")
            } throws: { error in
                "\(error)".contains("a.yaml:6:") && "\(error)".contains("2001 levels")
            }
        }
    }

    /// 80 MiB of zeros in ~80 KB passes the default total but not the ratio; `unpack-limit` lets it through.
    @Test func unpackLimitOverridesTheDefaultLimits() async throws {
        try await Fixture.with(
            """
            with tarfile.open(out, 'w:gz') as t:
                add(t, 'disk.img', b'\\0' * (80 << 20))
            """
        ) { (f) throws in
            #expect {
                _ = try f.entries("extract: [disk.img]\nto: /var/disk.img")
            } throws: { error in
                "\(error)".contains("a.yaml:6:") && "\(error)".contains("decompression bomb")
                    && "\(error)".contains("unpack-limit")
            }
            #expect {
                _ = try f.entries("extract: [disk.img]\nto: /var/disk.img\nunpack-limit: 50M")
            } throws: { error in
                "\(error)".contains("more than \(50 << 20) bytes")
            }
            #expect(try f.entries("extract: [disk.img]\nto: /var/disk.img\nunpack-limit: 100M").count == 1)
        }
    }

    /// The staging directory of an unpack whose process died is removed by the next unpack; a live one stays.
    @Test func staleStagingIsCleanedOnTheNextRun() async throws {
        try await Fixture.with("with tarfile.open(out, 'w:gz') as t: add(t, 'bin/tool', b'x')") { f in
            let parent = f.cache.root + "/extracted-v2"
            let dead = parent + "/.staging-999999999-1/tree"
            let live = parent + "/.staging-\(getpid())-2"
            try FileManager.default.createDirectory(atPath: dead, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: live, withIntermediateDirectories: true)
            try Data(count: 1 << 20).write(to: URL(fileURLWithPath: dead + "/partial"))
            _ = try f.entries("extract: [tool]\nto: /usr/bin/")
            #expect(!FileManager.default.fileExists(atPath: parent + "/.staging-999999999-1"))
            #expect(FileManager.default.fileExists(atPath: live))
        }
    }

    @Test func unpackLimitMustBeASize() throws {
        let yaml = """
            name: a
            version: "1"
            layers:
              - name: l
                add:
                  - url: https://example.invalid/x.tar.gz
                    extract: [x]
                    unpack-limit: lots
                    to: /x
            """
        let (_, problems) = RecipeSet.parse(yaml, file: "/r/a.yaml")
        #expect(problems.contains { "\($0)".contains("unpack-limit 'lots' is not a size") && "\($0)".contains(":8:") })
    }
}
