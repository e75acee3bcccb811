import Foundation
import KilnOCI
import KilnTestSupport
import Synchronization
import Testing

@testable import KilnStore

/// Images and small blobs read from any source, and the store read before another source.
@Suite struct BlobSourceImagesTests {
    /// A source that counts what is read from it (a registry stand-in: no local files).
    final class CountingSource: BlobSource {
        let inner: OCILayout
        private let log = Mutex<[Digest]>([])
        var reads: [Digest] { log.withLock { $0 } }

        init(_ inner: OCILayout) { self.inner = inner }

        var location: String { "counting \(inner.root)" }
        func document(_ descriptor: Descriptor) async throws -> Data? {
            log.withLock { $0.append(descriptor.digest) }
            return try await inner.document(descriptor)
        }
        func localFile(_ descriptor: Descriptor) -> String? { nil }
        func download(_ descriptor: Descriptor, to path: String) async throws {
            log.withLock { $0.append(descriptor.digest) }
            try await inner.download(descriptor, to: path)
        }
    }

    /// A one-layer linux/arm64 image written into `layout`; the manifest's descriptor and the config's.
    func image(in layout: OCILayout) throws -> (manifest: Descriptor, config: Descriptor) {
        let layer = try layout.writeBlob(Data("layer".utf8))
        let config = ImageConfig(
            platform: Platform(os: "linux", architecture: "arm64"),
            history: [.init(createdBy: "empty", emptyLayer: true), .init(createdBy: "COPY app /")])
        let configBytes = try CanonicalJSON.encode(config)
        let configDescriptor = Descriptor(mediaType: MediaType.imageConfig, bytes: configBytes)
        _ = try layout.writeBlob(configBytes)
        let manifest = try CanonicalJSON.encode(
            Manifest(
                config: configDescriptor,
                layers: [Descriptor(mediaType: MediaType.layerGzip, digest: layer, size: 5)]))
        _ = try layout.writeBlob(manifest)
        return (Descriptor(mediaType: MediaType.imageManifest, bytes: manifest), configDescriptor)
    }

    @Test func theStoreAnswersFirstAndTheOtherSourceTheRest() async throws {
        try await withTemporaryDirectory("kiln-sources") { tmp in try await storeFirst(in: tmp) }
    }

    func storeFirst(in tmp: TemporaryDirectory) async throws {
        let remote = CountingSource(try OCILayout(root: tmp.path + "/remote"))
        let (manifest, config) = try image(in: remote.inner)
        // The store holds the manifest only: the config must come from the other source.
        let store = try OCILayout(root: tmp.path + "/store")
        _ = try store.writeBlob(try remote.inner.readBlob(manifest.digest))

        let root = Descriptor(mediaType: manifest.mediaType, digest: manifest.digest, size: 0)
        let images = try await StoreFirst(store, then: remote).images(under: root)
        #expect(images.count == 1)
        #expect(remote.reads == [config.digest])
        let image = try #require(images.first)
        // The descriptor is made from the bytes read (the size was unknown), with the config's platform.
        #expect(image.manifestDescriptor.size == manifest.size && image.manifestDescriptor.digest == manifest.digest)
        #expect(image.manifestDescriptor.platform == Platform(os: "linux", architecture: "arm64"))
        #expect(image.createdBy(layer: 0) == "COPY app /")
        #expect(image.createdBy(layer: 1) == nil)

        // Without a store every read goes to the source.
        _ = try await StoreFirst(nil, then: remote).images(under: root)
        #expect(remote.reads == [config.digest, manifest.digest, config.digest])
    }

    @Test func contentsRefusesABlobThatDoesNotMatchItsDigest() async throws {
        try await withTemporaryDirectory("kiln-sources") { tmp in try await decayedBlob(in: tmp) }
    }

    func decayedBlob(in tmp: TemporaryDirectory) async throws {
        let store = try OCILayout(root: tmp.path + "/store")
        let digest = try store.writeBlob(Data("right".utf8))
        let descriptor = Descriptor(mediaType: MediaType.imageConfig, digest: digest, size: 5)
        #expect(try await store.contents(descriptor) == Data("right".utf8))
        // Decayed on disk, same size: refused, not returned.
        let path = store.blobPath(digest)
        try? FileManager.default.removeItem(atPath: path)
        try Data("wrong".utf8).write(to: URL(fileURLWithPath: path))
        await #expect(throws: StoreError.self) { try await store.contents(descriptor) }
    }
}
