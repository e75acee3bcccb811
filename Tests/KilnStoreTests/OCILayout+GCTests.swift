import Foundation
import KilnOCI
import KilnTestSupport
import Logging
import Testing

@testable import KilnStore

/// Garbage collection: what no tag reaches goes, unless it is younger than the grace period.
@Suite struct OCILayoutGCTests {
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

    @Test func removesExactlyTheUnreferencedBlobs() async throws {
        try await withTemporaryDirectory("kiln-gc") { tmp in
            let dir = tmp.path + "/store"
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
    }

    @Test func youngUntaggedBlobsSurvive() async throws {
        try await withTemporaryDirectory("kiln-gc") { tmp in
            let dir = tmp.path + "/store"
            let layout = try OCILayout(root: dir)
            _ = try storeImage(layout, layer: "in-flight")
            #expect(try layout.collectGarbage(dryRun: false).isEmpty)
        }
    }

    /// gc logs through the logger its caller gives it (what `kiln gc --verbose` shows): why each blob goes or stays.
    @Test func garbageCollectionLogsItsDecisionsToTheCallersLogger() async throws {
        try await withTemporaryDirectory("kiln-gc") { tmp in
            let layout = try OCILayout(root: tmp.path + "/store")
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
}
