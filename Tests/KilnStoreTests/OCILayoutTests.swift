import Foundation
import KilnOCI
import KilnTestSupport
import Testing

@testable import KilnStore

@Suite struct OCILayoutTests {
    @Test func createsAValidEmptyLayout() async throws {
        try await withTemporaryDirectory("kiln-store") { tmp in
            let dir = tmp.path + "/store"
            let layout = try OCILayout(root: dir)
            #expect(
                try String(contentsOfFile: dir + "/oci-layout", encoding: .utf8) == #"{"imageLayoutVersion":"1.0.0"}"#)
            #expect(try layout.index().manifests.isEmpty)
            #expect(FileManager.default.fileExists(atPath: dir + "/blobs/sha256"))
        }
    }

    @Test func blobsAreContentAddressedAndWrittenOnce() async throws {
        try await withTemporaryDirectory("kiln-store") { tmp in
            let dir = tmp.path + "/store"
            let layout = try OCILayout(root: dir)
            let digest = try layout.writeBlob(Data("hello".utf8))
            #expect(digest == Digest.sha256("hello"))
            #expect(try layout.readBlob(digest) == Data("hello".utf8))
            #expect(try layout.writeBlob(Data("hello".utf8)) == digest)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/.kiln/tmp").isEmpty)
        }
    }

    @Test func corruptBlobIsReported() async throws {
        try await withTemporaryDirectory("kiln-store") { tmp in
            let dir = tmp.path + "/store"
            let layout = try OCILayout(root: dir)
            let digest = try layout.writeBlob(Data("hello".utf8))
            try Data("jello".utf8).write(to: URL(fileURLWithPath: layout.blobPath(digest)))
            #expect(
                throws: StoreError.corruptBlob(
                    path: layout.blobPath(digest), expected: digest, actual: .sha256("jello"))
            ) {
                try layout.readBlob(digest)
            }
        }
    }

    @Test func retaggingReplacesTheEntry() async throws {
        try await withTemporaryDirectory("kiln-store") { tmp in
            let dir = tmp.path + "/store"
            let layout = try OCILayout(root: dir)
            let a = Descriptor(mediaType: MediaType.imageManifest, bytes: Data("a".utf8))
            let b = Descriptor(mediaType: MediaType.imageManifest, bytes: Data("b".utf8))
            try layout.tag(a, as: "komodod:1.0")
            try layout.tag(b, as: "komodod:1.0")
            try layout.tag(a, as: "bitcoind:1.0")
            let tags = try layout.tags()
            #expect(tags.map(\.reference) == ["bitcoind:1.0", "komodod:1.0"])
            #expect(try layout.resolve("komodod:1.0").digest == b.digest)
            #expect(tags[1].name == "komodod" && tags[1].tag == "1.0")
            #expect(throws: StoreError.self) { try layout.resolve("iguana:1.0") }
            #expect(try layout.untag("bitcoind:1.0"))
            #expect(try layout.tags().count == 1)
        }
    }

    @Test func unchangedTagsLeaveIndexJsonAloneAndOtherWritersAreSeen() async throws {
        try await withTemporaryDirectory("kiln-store") { tmp in
            let dir = tmp.path + "/store"
            let layout = try OCILayout(root: dir)
            let a = Descriptor(mediaType: MediaType.imageManifest, bytes: Data("a".utf8))
            let b = Descriptor(mediaType: MediaType.imageManifest, bytes: Data("b".utf8))
            func inode() throws -> Int {
                try (FileManager.default.attributesOfItem(atPath: dir + "/index.json")[.systemFileNumber] as! NSNumber)
                    .intValue
            }
            try layout.tag(a, as: "app:1")
            let written = try inode()
            // Tagging again what is already tagged (every image of a no-op rebuild) replaces nothing.
            try layout.tag(a, as: "app:1")
            #expect(try inode() == written)
            // Another process (here another handle on the same layout) changes the index: this handle sees it, and
            // its next change keeps the other's.
            try OCILayout(root: dir).tag(b, as: "other:1")
            #expect(try layout.resolve("other:1") == (try OCILayout(root: dir).resolve("other:1")))
            try layout.tag(b, as: "app:1")
            #expect(try layout.tags().map(\.reference) == ["app:1", "other:1"])
            #expect(try layout.resolve("app:1").digest == b.digest)
        }
    }

    @Test func concurrentTaggersLoseNothing() async throws {
        try await withTemporaryDirectory("kiln-store") { tmp in
            let dir = tmp.path + "/store"
            _ = try OCILayout(root: dir)
            await withTaskGroup(of: Void.self) { group in
                for i in 0..<32 {
                    group.addTask {
                        let layout = try! OCILayout(root: dir)
                        let d = Descriptor(mediaType: MediaType.imageManifest, bytes: Data("\(i)".utf8))
                        try! layout.tag(d, as: "image\(i):1")
                    }
                }
            }
            #expect(try OCILayout(root: dir).tags().count == 32)
        }
    }

    @Test func abandonedStagingFilesAreRemoved() async throws {
        try await withTemporaryDirectory("kiln-store") { tmp in
            let dir = tmp.path + "/store"
            _ = try OCILayout(root: dir)
            // pid 2147483646 does not exist: its staging file is debris from a killed build.
            let debris = dir + "/.kiln/tmp/2147483646-abc"
            _ = FileManager.default.createFile(atPath: debris, contents: Data("partial".utf8))
            _ = try OCILayout(root: dir)
            #expect(!FileManager.default.fileExists(atPath: debris))
        }
    }

    @Test func refusesAFileAsLayout() async throws {
        try await withTemporaryDirectory("kiln-store") { tmp in
            let dir = tmp.path + "/store"
            _ = FileManager.default.createFile(atPath: dir, contents: Data())
            #expect(throws: StoreError.self) { try OCILayout(root: dir) }
        }
    }
}
