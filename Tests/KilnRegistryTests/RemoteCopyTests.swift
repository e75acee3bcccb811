import Foundation
import KilnHTTP
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnRegistry

/// `kiln copy` between registries streams each blob (range reads piped into the upload, two pieces held at
/// most): no temporary file, no whole-blob buffer, and the same digest at the destination.
@Suite(.serialized) struct RemoteCopyTests {
    /// A store holding one image with a `size`-byte random layer, pushed to `registry` as `src/big:1`.
    func bigImage(size: Int, in tmp: TemporaryDirectory, to registry: RegistryServer) async throws -> Descriptor {
        let layout = try OCILayout(root: tmp.path + "/images")
        var random = SystemRandomNumberGenerator()
        var words = (0..<(size + 7) / 8).map { _ in random.next() }
        let layer = words.withUnsafeMutableBytes { Data($0.prefix(size)) }
        let config = Data(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8)
        _ = try layout.writeBlob(layer)
        _ = try layout.writeBlob(config)
        let manifest = try CanonicalJSON.encode(
            Manifest(
                config: Descriptor(mediaType: MediaType.imageConfig, bytes: config),
                layers: [Descriptor(mediaType: MediaType.layerGzip, bytes: layer)]))
        _ = try layout.writeBlob(manifest)
        let root = Descriptor(mediaType: MediaType.imageManifest, bytes: manifest)
        let transport = try HTTPTransport()
        let client = RegistryClient(registry: registry.address, transport: transport, options: RegistryOptions())
        _ = try await Pusher(layout: layout, client: client).push([
            .init(repository: "src/big", descriptor: root, tags: ["1"])
        ])
        await transport.shutdown()
        return root
    }

    @Test func copyBetweenRegistriesStreamsBlobsInBoundedPieces() async throws {
        try await withRegistry { source in
            try await withRegistry(scratch: "kiln-stream") { destination, tmp in
                try await streamedCopy(from: source, to: destination, in: tmp)
            }
        }
    }

    func streamedCopy(from source: RegistryServer, to destination: RegistryServer, in tmp: TemporaryDirectory)
        async throws
    {
        let size = 6 << 20 + 12345
        let root = try await bigImage(size: size, in: tmp, to: source)
        let transport = try HTTPTransport()
        defer { Task { await transport.shutdown() } }
        // 1 MiB pieces: the 6 MiB layer goes up in seven PATCHes, each read from the source as it is sent.
        let options = RegistryOptions(monolithicLimit: 1 << 20, chunkSize: 1 << 20)
        let from = RegistryClient(registry: source.address, transport: transport, options: options)
        let to = RegistryClient(registry: destination.address, transport: transport, options: options)
        let events = EventLog()
        let result = try await RemoteCopy(source: from, destination: to, events: events.record).copy(
            try Reference(parsing: "\(source.address)/src/big:1"),
            to: try Reference(parsing: "\(destination.address)/dst/big:1"))
        #expect(result.digest == root.digest)
        #expect(result.blobsWritten == 2)
        #expect(events.downloads == 0, "no blob was downloaded to a file first")
        #expect(events.uploadCount == 2)
        #expect(try Oracles.remoteDigest("\(destination.address)/dst/big:1") == root.digest.description)

        // The reader behind it holds two pieces at most, whatever the blob's size, and yields the exact bytes.
        let manifest = try CanonicalJSON.decode(Manifest.self, from: try await from.manifest("src/big", "1").data)
        let layer = manifest.layers[0]
        let reader = BlobRangeReader(
            source: RegistryRepository(client: from, repository: "src/big"), descriptor: layer)
        var hasher = SHA256()
        var offset: Int64 = 0
        while offset < layer.size {
            let piece = try await reader.read(offset, min(1 << 20, layer.size - offset))
            piece.withUnsafeBytes { hasher.update($0) }
            offset += Int64(piece.count)
        }
        #expect(hasher.finalize() == layer.digest)
        #expect(await reader.peak <= 2 << 20)

        // Streamed bytes that do not hash to the descriptor's digest (here: one byte short) are refused before
        // the last byte goes out, so the destination never stores the blob.
        // A new client: `to` knows the layer is in dst/big and would mount it from there, sending no byte.
        let liar = Descriptor(mediaType: layer.mediaType, digest: layer.digest, size: layer.size - 1)
        let fresh = RegistryClient(registry: destination.address, transport: transport, options: options)
        let sink = RegistryRepository(client: fresh, repository: "dst/liar")
        await #expect(throws: (any Error).self) {
            try await sink.putBlob(liar, from: RegistryRepository(client: from, repository: "src/big"))
        }
        #expect(try await to.blobSize("dst/liar", layer.digest) == nil)
    }
}
