import Foundation
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

/// A layer blob flipped in the store after the build: push hashes the file as it sends it and refuses it
/// before the upload completes, so the registry ends up with neither the blob nor the tag.
@Suite struct TamperedPushTests {
    @Test func aTamperedBlobIsRefusedBeforeTheRegistryHasIt() async throws {
        try await withRegistry(scratch: "kiln-tamperpush") { registry, tmp in
            try tmp.write("r/big", String(repeating: "kiln", count: 500_000))
            try tmp.write(
                "r/app.yaml",
                """
                name: app
                version: "1"
                compression: none
                layers:
                  - name: data
                    add: [{src: big, to: /big}]
                """)
            let store = tmp.path + "/images"
            let layout = try await FixtureStore.build([tmp.path + "/r"], into: store)
            let image = try #require(try layout.images(for: try layout.resolve("app:1")).first)
            let layer = try #require(image.manifest.layers.last)
            let path = layout.blobPath(layer.digest)
            let handle = try #require(FileHandle(forUpdatingAtPath: path))
            try handle.seek(toOffset: 1_000_000)
            try handle.write(contentsOf: Data("X".utf8))
            try handle.close()

            let pushed = try KilnBinary.run(
                ["push", "app", "--to", "\(registry.address)/ns", "--store", store], check: false)
            #expect(pushed.status == 2, "\(pushed.stderr)")
            #expect(pushed.stderr.contains(layer.digest.encoded), "\(pushed.stderr)")
            #expect(pushed.stderr.contains("kiln fsck"), "\(pushed.stderr)")
            #expect(try Oracles.remoteDigest("\(registry.address)/ns/app:1") == nil)
            let blob = try Shell.run(
                [
                    "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-I",
                    "http://\(registry.address)/v2/ns/app/blobs/\(layer.digest)",
                ], check: false)
            #expect(blob.stdout == "404", "the registry has the tampered blob")
        }
    }
}
