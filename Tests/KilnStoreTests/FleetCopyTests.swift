import Foundation
import KilnOCI
import KilnTestSupport
import Testing

@testable import KilnStore

/// `copyImages` as a fleet push runs it: one large image and several small ones sharing a base layer, each in
/// its own place. The small images must go up beside the large blob, not after it, with every ordering rule kept.
@Suite struct FleetCopyTests {
    /// Every place's sink records into one log, counts the operations in flight, and holds the large blob's
    /// write until `release` says so (or 10 s pass), as a slow upload would.
    final class FleetLog: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var operations: [(place: String, what: String)] = []
        private var inFlight = 0
        private(set) var mostInFlight = 0
        var release: @Sendable ([(place: String, what: String)]) -> Bool = { _ in true }
        var large: Digest?
        /// Whether the large blob's write was released by `release` rather than by the 10 s bound.
        private(set) var releasedInTime = false

        func note(_ place: String, _ what: String) { lock.withLock { operations.append((place, what)) } }

        func during<T>(_ body: () async throws -> T) async rethrows -> T {
            lock.withLock {
                inFlight += 1
                mostInFlight = max(mostInFlight, inFlight)
            }
            defer { lock.withLock { inFlight -= 1 } }
            return try await body()
        }

        func holdLargeBlob() async throws {
            for _ in 0..<1000 {
                if lock.withLock({ release(operations) }) {
                    lock.withLock { releasedInTime = true }
                    return
                }
                try await Task.sleep(for: .milliseconds(10))
            }
        }
    }

    struct PlaceSink: BlobSink {
        let place: String
        let layout: OCILayout
        let log: FleetLog

        func has(_ descriptor: Descriptor) async throws -> Bool {
            try await log.during { try await layout.has(descriptor) }
        }
        func putBlob(_ descriptor: Descriptor, from source: any BlobSource) async throws {
            try await log.during {
                log.note(place, "blob \(descriptor.digest.encoded.prefix(8)) start")
                if descriptor.digest == log.large { try await log.holdLargeBlob() }
                try await layout.putBlob(descriptor, from: source)
                log.note(place, "blob \(descriptor.digest.encoded.prefix(8))")
            }
        }
        func putManifest(_ descriptor: Descriptor, data: Data) async throws {
            try await log.during {
                log.note(place, "manifest \(descriptor.digest.encoded.prefix(8))")
                try await layout.putManifest(descriptor, data: data)
            }
        }
        func tag(_ descriptor: Descriptor, data: Data, as tag: String) async throws {
            try await log.during {
                log.note(place, "tag \(tag)")
                try await layout.tag(descriptor, data: data, as: tag)
            }
        }
    }

    /// An image of a config and `layers` in `layout`: its root and its blobs.
    func image(_ name: String, layers: [Data], in layout: OCILayout) throws -> (Descriptor, [Descriptor]) {
        let config = Data(
            #"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["\#(name)"]}}"#.utf8)
        try layout.writeBlob(config)
        let configDescriptor = Descriptor(mediaType: MediaType.imageConfig, bytes: config)
        var blobs = [configDescriptor]
        for layer in layers {
            try layout.writeBlob(layer)
            blobs.append(Descriptor(mediaType: MediaType.layerGzip, bytes: layer))
        }
        let manifest = try CanonicalJSON.encode(Manifest(config: configDescriptor, layers: Array(blobs.dropFirst())))
        try layout.writeBlob(manifest)
        return (Descriptor(mediaType: MediaType.imageManifest, bytes: manifest), blobs)
    }

    @Test func smallImagesCommitBesideTheLargestBlobInBoundedJobs() async throws {
        try await withTemporaryDirectory("kiln-fleet") { tmp in
            let source = try OCILayout(root: tmp.path + "/store")
            let base = Data("shared base layer".utf8)
            let big = Data(repeating: 7, count: 256 << 10)
            // The large image comes last by name, as komodod does among the assetchains: its blob must still
            // start first.
            var images: [(name: String, root: Descriptor, blobs: [Descriptor])] = []
            for index in 0..<6 {
                let (root, blobs) = try image("small\(index)", layers: [base, Data("own \(index)".utf8)], in: source)
                images.append(("small\(index)", root, blobs))
            }
            let (largeRoot, largeBlobs) = try image("zlarge", layers: [base, big], in: source)
            images.append(("zlarge", largeRoot, largeBlobs))
            let log = FleetLog()
            log.large = Digest.sha256(big)
            let smallManifests = images.dropLast().map { "manifest \($0.root.digest.encoded.prefix(8))" }
            log.release = { operations in smallManifests.allSatisfy { m in operations.contains { $0.what == m } } }
            let targets = try images.map {
                CopyTarget(
                    $0.root,
                    to: PlaceSink(place: $0.name, layout: try OCILayout(root: tmp.path + "/" + $0.name), log: log),
                    place: $0.name, tags: ["\($0.name):1"])
            }
            let results = try await copyImages(targets, from: source, jobs: 3)

            #expect(log.releasedInTime, "every small image's manifest was written while the large blob was going up")
            #expect(log.mostInFlight <= 3, "at most --jobs operations at once (\(log.mostInFlight))")
            let operations = log.operations
            let starts = operations.filter { $0.what.hasSuffix(" start") }.map(\.what)
            let largeStart = starts.firstIndex(of: "blob \(log.large!.encoded.prefix(8)) start") ?? Int.max
            #expect(largeStart < 3, "the largest blob is among the first writes started, not queued: \(starts)")
            let lastManifest = operations.lastIndex { $0.what.hasPrefix("manifest") } ?? operations.count
            let firstTag = operations.firstIndex { $0.what.hasPrefix("tag") } ?? -1
            #expect(lastManifest < firstTag, "tags only once every manifest is in")
            for (name, root, blobs) in images {
                let mine = operations.enumerated().filter { $0.element.place == name }
                let manifestAt = mine.first { $0.element.what.hasPrefix("manifest") }?.offset ?? -1
                for blob in blobs {
                    let done = "blob \(blob.digest.encoded.prefix(8))"
                    let written = mine.first { $0.element.what == done }?.offset ?? Int.max
                    #expect(written < manifestAt, "\(name): \(done) before its manifest")
                }
                #expect(try OCILayout(root: tmp.path + "/" + name).resolve("\(name):1").digest == root.digest)
            }
            // Each place got each of its blobs once (the shared base in every place: a registry mounts it).
            #expect(results.map(\.blobsWritten) == images.map(\.blobs.count))
            #expect(operations.filter { $0.what == "blob \(Digest.sha256(base).encoded.prefix(8))" }.count == 7)
        }
    }
}
