import Foundation
import KilnOCI
import KilnStore
import KilnTestSupport
import Synchronization
import Testing

@testable import KilnRegistry

/// Referrers read and pushed through the source and sink seams alone, with the store as the source and a
/// recording sink: no registry needed (the registry's side is covered by SBOMPublishTests and PullAsOCITests).
@Suite struct ReferrersTests {
    static let sbomType = "application/spdx+json"
    static let provenanceType = "application/vnd.in-toto+json"

    /// A stored image with two artifacts about it (an SBOM and a provenance document), as a build stores them:
    /// untagged index.json entries with their `artifactType`. Returns the image's descriptor.
    func storeWithArtifacts(_ layout: OCILayout) throws -> Descriptor {
        let config = Data("{}".utf8)
        try layout.writeBlob(config)
        let configDescriptor = Descriptor(mediaType: MediaType.imageConfig, bytes: config)
        let image = try CanonicalJSON.encode(Manifest(config: configDescriptor, layers: []))
        try layout.writeBlob(image)
        let subject = Descriptor(mediaType: MediaType.imageManifest, bytes: image)
        try layout.tag(subject, as: "app:1")
        for type in [Self.sbomType, Self.provenanceType] {
            let layer = Data("about the image as \(type)".utf8)
            try layout.writeBlob(layer)
            let artifact = try CanonicalJSON.encode(
                Manifest(
                    config: configDescriptor, layers: [Descriptor(mediaType: type, bytes: layer)],
                    artifactType: type, subject: subject))
            try layout.writeBlob(artifact)
            var entry = Descriptor(mediaType: MediaType.imageManifest, bytes: artifact)
            entry.artifactType = type
            try layout.updateIndex { $0.manifests.append(entry) }
        }
        return subject
    }

    @Test func listReadsAnySourceAndFiltersByArtifactType() async throws {
        try await withTemporaryDirectory("kiln-referrers") { tmp in
            let layout = try OCILayout(root: tmp.path + "/store")
            let subject = try storeWithArtifacts(layout)
            let all = try await Referrers.list(subject.digest, in: layout)
            #expect(Set(all.compactMap(\.artifactType)) == [Self.sbomType, Self.provenanceType])
            let sboms = try await Referrers.list(subject.digest, in: layout, artifactType: Self.sbomType)
            #expect(sboms.map(\.artifactType) == [Self.sbomType])
            #expect(try await Referrers.list(.sha256(Data("another image".utf8)), in: layout).isEmpty)
        }
    }

    @Test func pushCopiesEachReferrerThenMakesThemFindableOnce() async throws {
        try await withTemporaryDirectory("kiln-referrers") { tmp in
            let layout = try OCILayout(root: tmp.path + "/store")
            let subject = try storeWithArtifacts(layout)
            let sink = RecordingReferrerSink()
            let graph = try layout.graph(from: subject)
            let attached = try await Referrers.attached(to: graph, from: layout, sink: sink, place: "ns/app")
            _ = try await copyImages(attached.targets, from: layout, jobs: 2)
            let pushed = try await Referrers.makeFindable(attached, in: sink)
            #expect(pushed.count == 2)
            let log = sink.log.withLock { $0 }
            // Both artifact manifests (and their blobs) are written before they are made findable, in one call.
            #expect(Set(log.manifests) == Set(pushed.map(\.digest)))
            #expect(Set(log.blobs).count == 3, "the shared config and one layer per artifact")
            #expect(log.added.count == 1)
            #expect(log.added.first?.subject == subject.digest)
            #expect(Set(log.added.first?.artifacts ?? []) == Set(pushed.map(\.digest)))
            #expect(log.events.last == "addReferrers", "findable only once everything is written")
            // An image without referrers touches nothing.
            let none = RecordingReferrerSink()
            let config = Data(#"{"unrelated":true}"#.utf8)
            try layout.writeBlob(config)
            let lone = try CanonicalJSON.encode(
                Manifest(config: Descriptor(mediaType: MediaType.imageConfig, bytes: config), layers: []))
            try layout.writeBlob(lone)
            let other = try layout.graph(from: Descriptor(mediaType: MediaType.imageManifest, bytes: lone))
            let unrelated = try await Referrers.attached(to: other, from: layout, sink: none, place: "ns/app")
            #expect(unrelated.targets.isEmpty)
            #expect(try await Referrers.makeFindable(unrelated, in: none).isEmpty)
            #expect(none.log.withLock { $0.events.isEmpty })
        }
    }
}

/// A sink that keeps what it was sent, in order.
final class RecordingReferrerSink: ReferrerSink {
    struct Log {
        var blobs: [Digest] = []
        var manifests: [Digest] = []
        var added: [(subject: Digest, artifacts: [Digest])] = []
        var events: [String] = []
    }
    let log = Mutex(Log())

    func has(_ descriptor: Descriptor) async throws -> Bool { false }

    func putBlob(_ descriptor: Descriptor, from source: any BlobSource) async throws {
        log.withLock {
            $0.blobs.append(descriptor.digest)
            $0.events.append("putBlob")
        }
    }

    func putManifest(_ descriptor: Descriptor, data: Data) async throws {
        log.withLock {
            $0.manifests.append(descriptor.digest)
            $0.events.append("putManifest")
        }
    }

    func tag(_ descriptor: Descriptor, data: Data, as tag: String) async throws {
        log.withLock { $0.events.append("tag") }
    }

    func addReferrers(_ artifacts: [Descriptor], of subject: Digest) async throws {
        log.withLock {
            $0.added.append((subject, artifacts.map(\.digest)))
            $0.events.append("addReferrers")
        }
    }
}
