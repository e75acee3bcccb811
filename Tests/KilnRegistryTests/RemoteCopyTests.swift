import Foundation
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnHTTP
@testable import KilnRegistry

/// `kiln copy` between registries streams each blob (the source's GET piped into the upload's PUT or PATCH as
/// it arrives): no temporary file, no whole-blob or whole-piece buffer, and the same digest at the destination.
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

    /// The subject is the `kiln copy` process's peak memory, so the copy runs as the CLI. A 128 MiB layer goes up
    /// in four 32 MiB PATCHes and its config in one PUT; before the bodies were piped, each piece was held whole
    /// while the next was fetched and copied again into the request (about 100 MB per large blob).
    @Test func copyOfALargeBlobKeepsMemoryFlat() async throws {
        try await withRegistry { source in
            try await withRegistry(scratch: "kiln-copy-rss") { destination, tmp in
                let root = try await bigImage(size: 128 << 20, in: tmp, to: source)
                let result = try Shell.run([
                    "/usr/bin/time", "-v", KilnBinary.path, "copy", "\(source.address)/src/big:1",
                    "\(destination.address)/dst/big:1",
                ])
                let line = result.stderr.split(separator: "\n").first { $0.contains("Maximum resident set size") } ?? ""
                let kilobytes = Int(line.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
                print("kiln copy of a 128 MiB blob: peak RSS \(kilobytes / 1024) MB")
                #expect(kilobytes > 0 && kilobytes < 64 * 1024, "peak RSS \(kilobytes) kB for a 128 MiB blob")
                #expect(try Oracles.remoteDigest("\(destination.address)/dst/big:1") == root.digest.description)
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

        // The streams behind it yield the exact bytes of a range, and of the whole blob.
        let manifest = try CanonicalJSON.decode(Manifest.self, from: try await from.manifest("src/big", "1").data)
        let layer = manifest.layers[0]
        let whole = try await piped(from, layer, offset: 0, length: layer.size)
        #expect(whole == layer.digest)
        let all = try await from.blob("src/big", layer.digest, limit: Int(layer.size))
        let range = try await piped(from, layer, offset: 3 << 20, length: 12345)
        #expect(range == Digest.sha256(all[(3 << 20)..<(3 << 20) + 12345]))

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

    /// A piped body cannot be rewound, so every retry opens its bytes again at the offset the destination reports:
    /// a PATCH and a PUT cut halfway, a refused upload start and a 429 are all survived, with the same digest.
    @Test func copyThroughFaultsReopensTheSource() async throws {
        try await withRegistry { source in
            try await withRegistry(scratch: "kiln-copy-faults") { destination, tmp in
                try await withFaultProxy(upstream: destination.port) { proxy in
                    let root = try await bigImage(size: 6 << 20 + 777, in: tmp, to: source)
                    let transport = try HTTPTransport(options: HTTPOptions(attempts: 4, baseDelay: 0.05))
                    defer { Task { await transport.shutdown() } }
                    let options = RegistryOptions(monolithicLimit: 1 << 20, chunkSize: 1 << 20, jobs: 1)
                    let from = RegistryClient(registry: source.address, transport: transport, options: options)
                    let to = RegistryClient(registry: proxy.address, transport: transport, options: options)
                    let result = try await RemoteCopy(source: from, destination: to).copy(
                        try Reference(parsing: "\(source.address)/src/big:1"),
                        to: try Reference(parsing: "\(proxy.address)/dst/big:1"))
                    #expect(result.digest == root.digest)
                    for fault in ["429", "500", "reset during PATCH", "reset during PUT"] {
                        #expect(proxy.log.contains(fault), "fault \(fault) was injected")
                    }
                    #expect(try Oracles.remoteDigest("\(destination.address)/dst/big:1") == root.digest.description)
                }
            }
        }
    }

    /// A source registry that stalls mid-blob (half the layer sent, then nothing) during `kiln copy`: the copy
    /// ends within its limits (1 s idle, 4 s per request) with an error naming the source, and the destination
    /// holds no manifest of the image, neither by tag nor by digest.
    @Test func aSourceStallingMidBlobEndsTheCopyWithNothingCommitted() async throws {
        try await withRegistry { destination in
            try await withHostileRegistry(scratch: "kiln-copy-stall") { source, hostile, tmp in
                let root = try await bigImage(size: 6 << 20 + 99, in: tmp, to: source)
                let layout = try OCILayout(root: tmp.path + "/images")
                let layer = try layout.images(for: root)[0].manifest.layers[0]
                try hostile.setRules([.init("GET", "^/v2/src/big/blobs/\(layer.digest)", .stallMidway, seconds: 60)])
                let started = Date()
                let result = try KilnBinary.run(
                    ["copy", "\(hostile.address)/src/big:1", "\(destination.address)/dst/big:1"],
                    environment: ["KILN_TIMEOUT": "1", "KILN_DEADLINE": "4", "KILN_CACHE_DIR": tmp.path + "/cache"],
                    check: false)
                let elapsed = Date().timeIntervalSince(started)
                #expect(!result.succeeded && result.status < 128, "\(result.stdout)\(result.stderr)")
                #expect(elapsed < 40, "the copy ended in bounded time (\(Int(elapsed)) s)")
                #expect(hostile.requests.contains { $0.path.contains("/blobs/\(layer.digest)") }, "the stall was hit")
                // The error, not the first line announcing the copy: before, a stalled source was reported as the
                // destination timing out ("waiting for data from DESTINATION").
                let error = result.stderr.split(separator: "\n").first { $0.hasPrefix("Error:") } ?? ""
                #expect(
                    error.contains("waiting for data from \(hostile.address)")
                        && error.contains("\(hostile.address)/v2/src/big/blobs/"),
                    "the error names the source: \(result.stderr)")
                let transport = try HTTPTransport()
                let client = RegistryClient(
                    registry: destination.address, transport: transport, options: RegistryOptions())
                #expect(try await client.manifestDescriptor("dst/big", "1") == nil, "no tag at the destination")
                #expect(try await client.manifestDescriptor("dst/big", root.digest.description) == nil)
                #expect(try await client.blobSize("dst/big", layer.digest) == nil, "no partial layer stored")
                await transport.shutdown()
            }
        }
    }

    /// The digest of the bytes a body piped from `openBlob(offset, length)` sends, read as the transport reads
    /// them.
    func piped(_ client: RegistryClient, _ layer: Descriptor, offset: Int64, length: Int64) async throws -> Digest {
        let stream = try await client.openBlob(
            "src/big", layer.digest, offset: offset, length: length, size: layer.size)
        let chunks = PipedChunks(
            source: stream, offset: offset, length: length, check: nil, clock: HTTPOptions().retry.clock())
        var hasher = SHA256()
        for try await buffer in chunks { buffer.withUnsafeReadableBytes { hasher.update($0) } }
        return hasher.finalize()
    }
}
