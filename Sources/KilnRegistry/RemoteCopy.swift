import Foundation
import KilnOCI
import KilnStore

/// Registry-to-registry copy by digest (promotion from a test registry to production): the graph is copied
/// byte for byte, so the destination serves the same digest; within one registry every blob is mounted from
/// the source repository instead of sent again. The image's referrers (SBOMs under the fallback tag
/// `sha256-<digest>`, or listed by the referrers API) follow it.
public struct RemoteCopy: Sendable {
    public let source: RegistryClient
    public let destination: RegistryClient
    public let events: @Sendable (TransferEvent) -> Void
    /// Where blobs are known to be in the destination registry (mount sources).
    public let known: BlobLocations

    public init(
        source: RegistryClient, destination: RegistryClient, known: BlobLocations = BlobLocations(),
        events: @escaping @Sendable (TransferEvent) -> Void = { _ in }
    ) {
        self.source = source
        self.destination = destination
        self.known = known
        self.events = events
    }

    public struct Result: Codable, Sendable {
        public var source: String
        public var destination: String
        public var digest: Digest
        public var mediaType: String
        public var blobsWritten: Int
        public var referrers: [Descriptor]
    }

    /// Copies `from` to `to` (`to` without a tag or digest takes `from`'s tag).
    public func copy(_ from: Reference, to: Reference) async throws -> Result {
        let reader = RegistryRepository(client: source, repository: from.repository, events: events)
        let (_, root) = try await reader.resolve(from.identifier)
        let sink = RegistryRepository(client: destination, repository: to.repository, known: known, events: events)
        let sameRegistry = source.registry == destination.registry && from.repository != to.repository
        var tags: [String] = []
        if let tag = to.tag ?? from.tag, to.digest == nil { tags = [tag] }
        if let pinned = to.digest, pinned != root.digest {
            throw RegistryError(
                registry: destination.registry, repository: to.repository, step: "copying",
                message: "\(from) is \(root.digest), not the \(pinned) the destination names")
        }
        if sameRegistry {
            // Every blob the source repository serves can be mounted rather than uploaded.
            let graph = try await ImageGraph.walk(root) { try await reader.document($0) }
            for blob in graph.blobs { known.record(blob.descriptor.digest, in: from.repository) }
        }
        let copied = try await copyImage(root, from: reader, to: sink, tags: tags, jobs: destination.options.jobs)
        var referrers: [Descriptor] = []
        for node in copied.graph.nodes {
            let found = try await Referrers.list(node.descriptor.digest, in: from.repository, client: source)
            for artifact in found {
                var plain = artifact
                plain.annotations = nil
                plain.artifactType = nil
                try await copyImage(plain, from: reader, to: sink, jobs: destination.options.jobs)
                referrers.append(artifact)
            }
            // Without a referrers API at the destination, the source's fallback index goes along as it is.
            guard !found.isEmpty, try await destination.referrers(to.repository, node.descriptor.digest) == nil
            else { continue }
            let tag = Referrers.fallbackTag(node.descriptor.digest)
            guard try await source.manifestDescriptor(from.repository, tag) != nil else { continue }
            let fallback = try await source.manifest(from.repository, tag)
            try await sink.putManifest(fallback.descriptor, data: fallback.data)
            try await sink.tag(fallback.descriptor, data: fallback.data, as: tag)
        }
        return Result(
            source: from.description, destination: "\(destination.registry)/\(to.repository)@\(root.digest)",
            digest: root.digest, mediaType: root.mediaType, blobsWritten: copied.blobsWritten,
            referrers: referrers)
    }
}
