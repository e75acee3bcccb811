import Foundation
import KilnOCI
import KilnTestSupport
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
}
