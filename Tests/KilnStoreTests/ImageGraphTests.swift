import Foundation
import KilnOCI
import KilnTestSupport
import Testing

@testable import KilnStore

/// The one image graph: what a document is, the walk's order, and the copy's dedupe, order and idempotence.
@Suite struct ImageGraphTests {
    /// Records what a copy asks of the sink it wraps, in order.
    final class RecordingSink: BlobSink, @unchecked Sendable {
        let inner: OCILayout
        private let lock = NSLock()
        private(set) var operations: [String] = []

        init(_ inner: OCILayout) { self.inner = inner }

        func note(_ text: String) { lock.withLock { operations.append(text) } }

        func has(_ descriptor: Descriptor) async throws -> Bool { try await inner.has(descriptor) }
        func putBlob(_ descriptor: Descriptor, from source: any BlobSource) async throws {
            note("blob \(descriptor.digest.encoded.prefix(8))")
            try await inner.putBlob(descriptor, from: source)
        }
        func putManifest(_ descriptor: Descriptor, data: Data) async throws {
            note("manifest \(descriptor.digest.encoded.prefix(8))")
            try await inner.putManifest(descriptor, data: data)
        }
        func tag(_ descriptor: Descriptor, data: Data, as tag: String) async throws {
            note("tag \(tag)")
            try await inner.tag(descriptor, data: data, as: tag)
        }
    }

    /// Two platform manifests sharing a layer, an inner index of one of them, and an outer index listing the
    /// inner index *before* the manifest it shares with it (writing documents in the order they were fetched
    /// would put the inner index before its manifest).
    func fixture(_ layout: OCILayout) throws -> (root: Descriptor, amd: Descriptor, arm: Descriptor, inner: Descriptor)
    {
        let shared = try layout.writeBlob(Data("shared layer".utf8))
        let sharedLayer = Descriptor(mediaType: MediaType.layerGzip, digest: shared, size: 12)
        func image(_ arch: String) throws -> Descriptor {
            let config = Data(
                #"{"architecture":"\#(arch)","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8)
            try layout.writeBlob(config)
            let own = Data("layer \(arch)".utf8)
            try layout.writeBlob(own)
            let manifest = Manifest(
                config: Descriptor(mediaType: MediaType.imageConfig, bytes: config),
                layers: [sharedLayer, Descriptor(mediaType: MediaType.layerGzip, bytes: own)])
            let bytes = try CanonicalJSON.encode(manifest)
            try layout.writeBlob(bytes)
            var descriptor = Descriptor(mediaType: MediaType.imageManifest, bytes: bytes)
            descriptor.platform = Platform(architecture: arch)
            return descriptor
        }
        let amd = try image("amd64")
        let arm = try image("arm64")
        let innerBytes = try CanonicalJSON.encode(ImageIndex(manifests: [arm]))
        try layout.writeBlob(innerBytes)
        let inner = Descriptor(mediaType: MediaType.imageIndex, bytes: innerBytes)
        let outerBytes = try CanonicalJSON.encode(ImageIndex(manifests: [amd, inner, arm]))
        try layout.writeBlob(outerBytes)
        return (Descriptor(mediaType: MediaType.imageIndex, bytes: outerBytes), amd, arm, inner)
    }

    @Test func walkOrdersChildrenFirstAndListsEachBlobOnce() async throws {
        try await withTemporaryDirectory("kiln-graph") { tmp in
            let layout = try OCILayout(root: tmp.path + "/a")
            let (root, amd, arm, inner) = try fixture(layout)
            let graph = try layout.graph(from: root)
            let order = graph.nodes.map(\.descriptor.digest)
            #expect(order.count == 4)
            #expect(order.last == root.digest)
            let position = { (d: Descriptor) in order.firstIndex(of: d.digest) ?? -1 }
            #expect(position(arm) < position(inner), "a manifest before the index that lists it")
            #expect(position(inner) < position(root) && position(amd) < position(root))
            // Two configs, two own layers, one shared layer: five blobs, each once.
            #expect(graph.blobs.count == 5)
            #expect(Set(graph.blobs.map(\.descriptor.digest)).count == 5)
            #expect(graph.manifests.map(\.descriptor.platform?.architecture) == ["amd64", "arm64"])
            #expect(try layout.images(for: root).map(\.config.architecture) == ["amd64", "arm64"])
            #expect(try layout.reachableBlobs(from: root).count == 9)
        }
    }

    @Test func kindIsDecidedByMediaTypeThenByContent() throws {
        let index = Data(#"{"schemaVersion":2,"manifests":[]}"#.utf8)
        let manifest = Data(
            #"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:\#(String(repeating: "a", count: 64))","size":1},"layers":[]}"#
                .utf8)
        let generic = { (data: Data) in Descriptor(mediaType: "application/json", bytes: data) }
        #expect(ImageGraph.kind(of: generic(index), data: index) == .index)
        #expect(ImageGraph.kind(of: generic(manifest), data: manifest) == .manifest)
        // A registry labelling an index as a manifest: its content decides.
        #expect(
            ImageGraph.kind(of: Descriptor(mediaType: MediaType.imageManifest, bytes: index), data: index) == .index)
        #expect(
            ImageGraph.kind(of: Descriptor(mediaType: MediaType.dockerManifestList, bytes: index), data: nil) == .index)
        #expect(ImageGraph.kind(of: Descriptor(mediaType: MediaType.layerGzip, bytes: Data()), data: Data()) == .blob)
    }

    @Test func copyWritesBlobsOnceManifestsBottomUpTagsLastAndIsIdempotent() async throws {
        try await withTemporaryDirectory("kiln-graph") { tmp in
            let source = try OCILayout(root: tmp.path + "/a")
            let (root, _, arm, inner) = try fixture(source)
            let target = try OCILayout(root: tmp.path + "/b")
            let sink = RecordingSink(target)
            let result = try await copyImage(root, from: source, to: sink, tags: ["multi:1"], jobs: 3)
            #expect(result.blobsWritten == 5 && result.manifestsWritten == 4)
            let ops = sink.operations
            #expect(ops.filter { $0.hasPrefix("blob") }.count == 5)
            #expect(ops.last == "tag multi:1", "the tag comes last")
            let firstManifest = ops.firstIndex { $0.hasPrefix("manifest") } ?? 0
            #expect(ops[..<firstManifest].allSatisfy { $0.hasPrefix("blob") }, "blobs before any manifest")
            let name = { (d: Descriptor) in "manifest \(d.digest.encoded.prefix(8))" }
            #expect((ops.firstIndex(of: name(arm)) ?? 99) < (ops.firstIndex(of: name(inner)) ?? -1))
            #expect(ops.firstIndex(of: name(root)) == ops.count - 2)
            #expect(try target.resolve("multi:1").digest == root.digest)
            #expect(try target.reachableBlobs(from: root) == source.reachableBlobs(from: root))
            // Again: nothing is written (the tag is set again, which changes nothing).
            let again = RecordingSink(target)
            let second = try await copyImage(root, from: source, to: again, tags: ["multi:1"], jobs: 3)
            #expect(second.blobsWritten == 0 && second.manifestsWritten == 0)
            #expect(again.operations == ["tag multi:1"])
        }
    }

    @Test func aSourceMissingAManifestFailsBeforeWritingAnything() async throws {
        try await withTemporaryDirectory("kiln-graph") { tmp in
            let source = try OCILayout(root: tmp.path + "/a")
            let (root, _, _, inner) = try fixture(source)
            try source.removeBlob(inner.digest)
            let sink = RecordingSink(try OCILayout(root: tmp.path + "/b"))
            await #expect(throws: GraphCopyError.self) {
                try await copyImage(root, from: source, to: sink, tags: ["x:1"])
            }
            #expect(sink.operations.isEmpty)
        }
    }
}
