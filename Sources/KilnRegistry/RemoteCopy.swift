import Foundation
import KilnOCI
import KilnStore

/// Registry-to-registry copy by digest (promotion from a test registry to production): the graph is copied
/// byte for byte, so the destination serves the same digest; within one registry every blob is mounted from
/// the source repository instead of sent again. The image's referrers (SBOMs under the fallback tag
/// `sha256-<digest>`, or listed by the referrers API) follow it, and so do cosign's signatures and attestations
/// (`sha256-<digest>.sig` and `.att` of each manifest), so a promoted image stays verifiable. Across
/// registries, blobs are mounted from the destination's repositories its client knows to hold them
/// (`RegistryClient.blobLocations`, started from the blob-location cache).
public struct RemoteCopy: Sendable {
    public let source: RegistryClient
    public let destination: RegistryClient
    public let events: @Sendable (TransferEvent) -> Void

    public init(
        source: RegistryClient, destination: RegistryClient,
        events: @escaping @Sendable (TransferEvent) -> Void = { _ in }
    ) {
        self.source = source
        self.destination = destination
        self.events = events
    }

    public struct Result: Codable, Sendable {
        public var source: String
        public var destination: String
        public var digest: Digest
        public var mediaType: String
        public var blobsWritten: Int
        public var referrers: [Descriptor]
        /// cosign's tag-based attachments that came along (`sha256-<hex>.sig`, `.att`: signatures and
        /// attestations), by tag.
        public var attachments: [String]?
    }

    /// Copies a cosign attachment (signatures or attestations of one manifest, an OCI manifest under `tag`) when
    /// the source has it (see `CosignAttachments.put`: a destination's own payloads are not dropped). Returns
    /// whether it was copied.
    func copyAttachment(_ tag: String, from reader: RegistryRepository, to sink: RegistryRepository) async throws
        -> Bool
    {
        guard try await source.manifestDescriptor(reader.repository, tag) != nil else { return false }
        let (data, descriptor) = try await reader.resolve(tag)
        return try await CosignAttachments.put(descriptor, data: data, as: tag, from: reader, to: sink)
    }

    /// Copies `from` to `to` (`to` without a tag or digest takes `from`'s tag).
    public func copy(_ from: Reference, to: Reference) async throws -> Result {
        defer { destination.saveBlobLocations() }
        let reader = RegistryRepository(client: source, repository: from.repository, events: events)
        let (_, root) = try await reader.resolve(from.identifier)
        let sink = RegistryRepository(client: destination, repository: to.repository, events: events)
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
            for blob in graph.blobs {
                destination.blobLocations.record(blob.descriptor.digest, in: from.repository, learnt: false)
            }
        }
        let copied = try await copyImage(root, from: reader, to: sink, tags: tags, jobs: destination.options.jobs)
        var referrers: [Descriptor] = []
        for node in copied.graph.nodes {
            let found = try await Referrers.list(node.descriptor.digest, in: reader)
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
        var attachments: [String] = []
        for node in copied.graph.nodes {
            for tag in CosignAttachments.tags(of: node.descriptor.digest) {
                if try await copyAttachment(tag, from: reader, to: sink) { attachments.append(tag) }
            }
        }
        return Result(
            source: from.description, destination: "\(destination.registry)/\(to.repository)@\(root.digest)",
            digest: root.digest, mediaType: root.mediaType, blobsWritten: copied.blobsWritten,
            referrers: referrers, attachments: attachments.isEmpty ? nil : attachments)
    }
}
