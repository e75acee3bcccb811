import Foundation
import KilnOCI
import KilnTestSupport
import Logging
import Testing

@testable import KilnStore

@Suite struct OCILayoutTests {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-store-\(UUID().uuidString)").path

    @Test func createsAValidEmptyLayout() throws {
        let layout = try OCILayout(root: dir)
        #expect(try String(contentsOfFile: dir + "/oci-layout", encoding: .utf8) == #"{"imageLayoutVersion":"1.0.0"}"#)
        #expect(try layout.index().manifests.isEmpty)
        #expect(FileManager.default.fileExists(atPath: dir + "/blobs/sha256"))
    }

    @Test func blobsAreContentAddressedAndWrittenOnce() throws {
        let layout = try OCILayout(root: dir)
        let digest = try layout.writeBlob(Data("hello".utf8))
        #expect(digest == Digest.sha256("hello"))
        #expect(try layout.readBlob(digest) == Data("hello".utf8))
        #expect(try layout.writeBlob(Data("hello".utf8)) == digest)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/.kiln/tmp").isEmpty)
    }

    @Test func corruptBlobIsReported() throws {
        let layout = try OCILayout(root: dir)
        let digest = try layout.writeBlob(Data("hello".utf8))
        try Data("jello".utf8).write(to: URL(fileURLWithPath: layout.blobPath(digest)))
        #expect(
            throws: StoreError.corruptBlob(path: layout.blobPath(digest), expected: digest, actual: .sha256("jello"))
        ) {
            try layout.readBlob(digest)
        }
    }

    @Test func retaggingReplacesTheEntry() throws {
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

    @Test func unchangedTagsLeaveIndexJsonAloneAndOtherWritersAreSeen() throws {
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

    @Test func concurrentTaggersLoseNothing() async throws {
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

    @Test func abandonedStagingFilesAreRemoved() throws {
        _ = try OCILayout(root: dir)
        // pid 2147483646 does not exist: its staging file is debris from a killed build.
        let debris = dir + "/.kiln/tmp/2147483646-abc"
        _ = FileManager.default.createFile(atPath: debris, contents: Data("partial".utf8))
        _ = try OCILayout(root: dir)
        #expect(!FileManager.default.fileExists(atPath: debris))
    }

    @Test func refusesAFileAsLayout() throws {
        _ = FileManager.default.createFile(atPath: dir, contents: Data())
        #expect(throws: StoreError.self) { try OCILayout(root: dir) }
    }
}

@Suite struct GarbageCollectionTests {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-gc-\(UUID().uuidString)").path

    /// Stores a one-layer image and returns (manifest descriptor, layer digest, config digest).
    func storeImage(_ layout: OCILayout, layer: String) throws -> (Descriptor, Digest, Digest) {
        let layerDigest = try layout.writeBlob(Data(layer.utf8))
        let config = ImageConfig(platform: .linuxAMD64, rootfs: .init(diffIDs: [layerDigest]))
        let configBytes = try CanonicalJSON.encode(config)
        let configDigest = try layout.writeBlob(configBytes)
        let manifest = Manifest(
            config: Descriptor(mediaType: MediaType.imageConfig, bytes: configBytes),
            layers: [Descriptor(mediaType: MediaType.layerTar, bytes: Data(layer.utf8))])
        let bytes = try CanonicalJSON.encode(manifest)
        try layout.writeBlob(bytes)
        return (Descriptor(mediaType: MediaType.imageManifest, bytes: bytes), layerDigest, configDigest)
    }

    @Test func removesExactlyTheUnreferencedBlobs() throws {
        let layout = try OCILayout(root: dir)
        let (keep, keepLayer, keepConfig) = try storeImage(layout, layer: "shared")
        let (drop, dropLayer, dropConfig) = try storeImage(layout, layer: "only-in-dropped")
        try layout.tag(keep, as: "a:1")
        try layout.tag(drop, as: "b:1")
        #expect(try layout.collectGarbage(dryRun: true, graceSeconds: 0).isEmpty)
        try layout.untag("b:1")
        let planned = try layout.collectGarbage(dryRun: true, graceSeconds: 0)
        #expect(Set(planned.map(\.digest)) == [drop.digest, dropLayer, dropConfig])
        #expect(layout.hasBlob(dropLayer), "a dry run removes nothing")
        let removed = try layout.collectGarbage(dryRun: false, graceSeconds: 0)
        #expect(Set(removed.map(\.digest)) == [drop.digest, dropLayer, dropConfig])
        #expect(try layout.allBlobs().sorted() == [keep.digest, keepLayer, keepConfig].sorted())
        #expect(try layout.images(for: keep).count == 1)
    }

    @Test func youngUntaggedBlobsSurvive() throws {
        let layout = try OCILayout(root: dir)
        _ = try storeImage(layout, layer: "in-flight")
        #expect(try layout.collectGarbage(dryRun: false).isEmpty)
    }

    /// gc logs through the logger its caller gives it (what `kiln gc --verbose` shows): why each blob goes or stays.
    @Test func garbageCollectionLogsItsDecisionsToTheCallersLogger() throws {
        let layout = try OCILayout(root: dir)
        let (young, _, _) = try storeImage(layout, layer: "young")
        let captured = CapturedLog()
        _ = try layout.collect(dryRun: true, graceSeconds: 3600, logger: captured.logger(level: .debug))
        #expect(captured.contains("\(young.digest) unreachable but younger than 3600 s: kept", at: .debug))
        let quiet = CapturedLog()
        _ = try layout.collect(dryRun: true, graceSeconds: 0, logger: quiet.logger(level: .info))
        #expect(quiet.entries.isEmpty, "the caller's level is honoured: \(quiet.entries.map(\.message))")
        let removing = CapturedLog()
        _ = try layout.collect(dryRun: false, graceSeconds: 0, logger: removing.logger(level: .debug))
        #expect(removing.contains("\(young.digest) unreachable: removed"))
    }
}
