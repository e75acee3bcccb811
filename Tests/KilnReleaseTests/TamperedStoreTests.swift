import Foundation
import KilnLayer
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnRelease

/// A store whose layer blob was flipped after it was written: export and the layer reader behind verify and
/// diff refuse it instead of passing it on.
@Suite struct TamperedStoreTests {
    @Test func exportAndLayerReadsRefuseATamperedBlob() async throws {
        try await withTemporaryDirectory("kiln-tamper") { tmp in
            let layout = try OCILayout(root: tmp.path + "/store")
            let file = try tmp.write("hello.txt", "world")
            let staged = tmp.path + "/layer.tar"
            let written = try LayerWriter.write(
                entries: [LayerEntry(path: "/hello.txt", kind: .file(.path(file)), mode: 0o644)], to: staged,
                options: LayerOptions(compression: .none))
            try layout.adopt(fileAt: staged, as: written.descriptor.digest)
            let configData = try CanonicalJSON.encode(
                ImageConfig(platform: .host, rootfs: .init(diffIDs: [written.diffID])))
            let config = try layout.writeBlob(configData)
            let manifest = try CanonicalJSON.encode(
                Manifest(
                    config: Descriptor(mediaType: MediaType.imageConfig, digest: config, size: Int64(configData.count)),
                    layers: [
                        Descriptor(
                            mediaType: MediaType.layerTar, digest: written.descriptor.digest,
                            size: written.descriptor.size)
                    ]))
            try layout.writeBlob(manifest)
            try layout.tag(Descriptor(mediaType: MediaType.imageManifest, bytes: manifest), as: "app:1")
            // Sound: both readers go through.
            _ = try await ImageArchive.write(layout: layout, reference: "app:1", format: .oci, to: tmp.path + "/ok.tar")
            #expect(
                try LayerReader.files(
                    at: layout.blobPath(written.descriptor.digest), expected: written.descriptor.digest
                )
                .count == 1)

            // One byte of the file's content flipped in the stored layer.
            var bytes = try Data(contentsOf: URL(fileURLWithPath: layout.blobPath(written.descriptor.digest)))
            let at = try #require(bytes.range(of: Data("world".utf8))).lowerBound
            bytes[at] = UInt8(ascii: "W")
            try bytes.write(to: URL(fileURLWithPath: layout.blobPath(written.descriptor.digest)))

            await #expect(throws: StoreError.self) {
                try await ImageArchive.write(
                    layout: layout, reference: "app:1", format: .oci, to: tmp.path + "/bad.tar")
            }
            #expect(!FileManager.default.fileExists(atPath: tmp.path + "/bad.tar"), "no archive under the name")
            #expect {
                try LayerReader.files(
                    at: layout.blobPath(written.descriptor.digest), expected: written.descriptor.digest)
            } throws: { error in
                "\(error)".contains("is corrupt") && "\(error)".contains(written.descriptor.digest.encoded)
            }
            #expect(
                try LayerReader.files(at: layout.blobPath(written.descriptor.digest)).count == 1,
                "unchecked read still parses")
        }
    }
}
