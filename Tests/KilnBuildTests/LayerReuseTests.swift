import Foundation
import KilnLayer
import KilnOCI
import KilnRecipe
import KilnStore
import KilnTestSupport
import Synchronization
import Testing

@testable import KilnBuild

/// When a layer is written and when it is reused: keyed before writing (known inputs) or from the digests
/// taken while writing (inputs never seen), with the same key either way.
@Suite struct LayerReuseTests {
    struct Fixture {
        let dir: TemporaryDirectory
        let recipes: [Recipe]
        var store: String { dir.path + "/images" }
        var small: String { dir.path + "/input/small.txt" }
        var big: String { dir.path + "/input/big.bin" }

        /// A fixture in a temporary directory of its own, removed after `body`.
        static func with<T>(_ body: (Fixture) async throws -> T) async throws -> T {
            try await withTemporaryDirectory("kiln-reuse") { try await body(Fixture(in: $0)) }
        }

        init(in dir: TemporaryDirectory) throws {
            self.dir = dir
            try dir.write("input/small.txt", "hello\n")
            // Several read buffers' worth, so a change can be made while the writer is still reading it.
            try Data((0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) })
                .write(to: URL(fileURLWithPath: dir.path + "/input/big.bin"))
            let yaml = """
                name: reuse
                version: "1"
                layers:
                  - name: data
                    add:
                      - src: input
                        to: /data/
                """
            let file = dir.path + "/reuse.yaml"
            try yaml.write(toFile: file, atomically: true, encoding: .utf8)
            let (recipes, problems) = RecipeSet.parse(yaml, file: file)
            try #require(problems.isEmpty)
            self.recipes = recipes
        }

        /// One build as one `kiln build` process would run it: a new builder over the store.
        func build(
            rehash: Bool = false, events: @escaping @Sendable (BuildEvent) -> Void = { _ in }
        ) async throws -> (layer: BuiltImage.Layer, bytesHashed: Int64) {
            let layout = try OCILayout(root: store)
            let plan = try Pipeline.plan(
                recipes, lock: LockFile(), lockPath: dir.path + "/kiln.lock",
                options: BuildOptions(sourceDateEpoch: 0, rehash: rehash))
            let builder = try Builder(
                layout: layout, prepared: try await Pipeline.prepare(plan, store: store), events: events)
            let built = try await builder.build()
            let layer = try #require(built.first?.layers.first)
            return (layer, builder.digests.bytesHashed)
        }
    }

    @Test func firstBuildKeysTheLayerAsEveryLaterBuildDoes() async throws {
        try await Fixture.with { f in
            let inputBytes = Int64(6 + (3 << 20))

            let cold = try await f.build()
            #expect(!cold.layer.reused)
            #expect(cold.bytesHashed == inputBytes)
            // The digests recorded while writing are the files' digests.
            let table = FileDigests(layout: try OCILayout(root: f.store))
            #expect(try table.current(f.big) == FileDigests.hash(f.big))
            #expect(try table.current(f.small) == FileDigests.hash(f.small))

            // Nothing changed: reused without reading anything, so the key taken after writing matches the key
            // taken from the table before writing.
            let noop = try await f.build()
            #expect(noop.layer.reused && noop.layer.digest == cold.layer.digest)
            #expect(noop.bytesHashed == 0)

            // Touched but unchanged: hashed again before keying, and reused.
            var times = [timespec(tv_sec: 1_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000, tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, f.big, &times, 0) == 0)
            let touched = try await f.build()
            #expect(touched.layer.reused && touched.bytesHashed == Int64(3 << 20))

            // --rehash reads every input once, and still reuses.
            let rehashed = try await f.build(rehash: true)
            #expect(rehashed.layer.reused && rehashed.bytesHashed == inputBytes)

            // Changed: written again.
            try f.dir.write("input/small.txt", "changed\n")
            let changed = try await f.build()
            #expect(!changed.layer.reused && changed.layer.digest != cold.layer.digest)
        }
    }

    /// The key written by hand is the digest of the document JSONEncoder wrote for it before, so a store's
    /// layer cache keeps its entries: every kind of entry, and paths JSON must escape.
    @Test func layerKeysAreTheCanonicalJSONKeysOfBefore() async throws {
        struct KeyEntry: Encodable {
            var path: String
            var kind: String
            var value: String
            var mode: UInt32
            var uid: Int
            var gid: Int
        }
        struct Key: Encodable {
            var encoding = Encoding.version
            var compression: String
            var mtime: Int64
            var entries: [KeyEntry]
        }
        try await Fixture.with { f in
            let plan = try Pipeline.plan(
                f.recipes, lock: LockFile(), lockPath: f.dir.path + "/kiln.lock",
                options: BuildOptions(sourceDateEpoch: 1_700_000_000))
            let builder = try Builder(
                layout: try OCILayout(root: f.store), prepared: try await Pipeline.prepare(plan, store: f.store),
                events: { _ in })
            let motd = Data("hi\n".utf8)
            let entries = [
                LayerEntry(
                    path: "/data/a \"b\"\\c\n\u{1}/é日", kind: .file(.path(f.small)), mode: 0o644, uid: 7, gid: 9),
                LayerEntry(path: "data/dir", kind: .directory, mode: 0o755),
                LayerEntry(path: "/data/link", kind: .symlink(target: "../a/\"x\""), mode: 0o777),
                LayerEntry(path: "/data/hard", kind: .hardlink(target: "/data/big"), mode: 0o600),
                LayerEntry(path: "/data/big", kind: .file(.path(f.big)), mode: 0o755),
                LayerEntry(path: "/etc/motd", kind: .file(.bytes(motd)), mode: 0o644),
            ]
            let before = Key(
                compression: "gzip", mtime: 1_700_000_000,
                entries: [
                    KeyEntry(
                        path: entries[0].path, kind: "file", value: try FileDigests.hash(f.small).description,
                        mode: 0o644, uid: 7, gid: 9),
                    KeyEntry(path: "data/dir", kind: "dir", value: "", mode: 0o755, uid: 0, gid: 0),
                    KeyEntry(path: "/data/link", kind: "symlink", value: "../a/\"x\"", mode: 0o777, uid: 0, gid: 0),
                    KeyEntry(path: "/data/hard", kind: "hardlink", value: "/data/big", mode: 0o600, uid: 0, gid: 0),
                    KeyEntry(
                        path: "/data/big", kind: "file", value: try FileDigests.hash(f.big).description, mode: 0o755,
                        uid: 0, gid: 0),
                    KeyEntry(
                        path: "/etc/motd", kind: "file", value: Digest.sha256(motd).description, mode: 0o644, uid: 0,
                        gid: 0),
                ])
            #expect(
                try builder.cacheKey(entries, compression: .gzip) == Digest.sha256(try CanonicalJSON.encode(before)))
        }
    }

    /// A layer blob flipped in place (same size, so the size check alone passes) is not reused: its stamp
    /// changed, it is hashed, found wrong, removed, and the layer is written again with its true bytes.
    @Test func aTamperedLayerBlobIsRewrittenNotReused() async throws {
        try await Fixture.with { f in
            let cold = try await f.build()
            let blob = try OCILayout(root: f.store).blobPath(cold.layer.digest)
            let fd = open(blob, O_WRONLY)
            #expect(fd >= 0)
            #expect(pwrite(fd, [0x42, 0x42, 0x42, 0x42], 4, 100) == 4)
            close(fd)
            #expect(try FileDigests.hash(blob) != cold.layer.digest)
            let rebuilt = try await f.build()
            #expect(!rebuilt.layer.reused && rebuilt.layer.digest == cold.layer.digest)
            #expect(try FileDigests.hash(blob) == cold.layer.digest)
            // Untouched since it was written again: reused without reading it.
            let noop = try await f.build()
            #expect(noop.layer.reused && noop.bytesHashed == 0)
        }
    }

    @Test func inputRewrittenWhileBeingWrittenFailsTheBuild() async throws {
        // Spelled out: a closure whose only `try`s sit inside #expect is not inferred to throw.
        try await Fixture.with { (f) throws in
            let big = f.big
            let appended = Mutex(false)
            let events: @Sendable (BuildEvent) -> Void = { event in
                guard case .layerProgress = event else { return }
                appended.withLock { done in
                    guard !done, let handle = FileHandle(forWritingAtPath: big) else { return }
                    handle.seekToEndOfFile()
                    handle.write(Data("more".utf8))
                    handle.closeFile()
                    done = true
                }
            }
            await #expect {
                _ = try await f.build(events: events)
            } throws: { error in
                "\(error)".contains("changed while it was being added")
            }
            #expect(appended.withLock { $0 })
            // Nothing was tagged, and nothing about the file was remembered.
            #expect(try OCILayout(root: f.store).tags().isEmpty)
            #expect(try FileDigests(layout: OCILayout(root: f.store)).current(big) == nil)
        }
    }
}
