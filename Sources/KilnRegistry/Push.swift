import Foundation
import KilnOCI
import KilnStore

/// What push and pull report while they work.
public enum TransferEvent: Sendable {
    case blobSkipped(repository: String, digest: Digest, size: Int64)
    case blobMounted(repository: String, digest: Digest, from: String, size: Int64)
    /// The registry refused to mount the blob from `from`: a stale location, dropped.
    case mountRefused(repository: String, digest: Digest, from: String)
    case blobProgress(repository: String, digest: Digest, done: Int64, total: Int64)
    case blobUploaded(repository: String, digest: Digest, size: Int64)
    case blobDownloaded(repository: String, digest: Digest, size: Int64)
    case manifestPushed(repository: String, reference: String)
}

/// One pushed image: where operators pin it.
public struct PushedImage: Codable, Sendable {
    /// `REGISTRY/REPOSITORY@sha256:…`
    public var reference: String
    public var repository: String
    public var digest: Digest
    public var mediaType: String
    public var tags: [String]
    /// Artifacts pushed beside it whose subject is one of its manifests (its SPDX SBOMs), as the referrers API
    /// lists them (digest, media type, artifact type, size).
    public var referrers: [Descriptor]?
}

/// Publishes images from a layout: `copyImage` from the store to each image's repository (blobs: HEAD, mount,
/// upload; then manifests by digest, indexes, and tags last), then each manifest's stored referrers (SBOMs,
/// see `Referrers`). Idempotent: what the registry has is skipped.
public struct Pusher: Sendable {
    public let layout: OCILayout
    public let client: RegistryClient
    public let events: @Sendable (TransferEvent) -> Void
    /// Where blobs are known to be in the registry (mount sources); `BlobLocationCache` primes it.
    public let known: BlobLocations

    public init(
        layout: OCILayout, client: RegistryClient, known: BlobLocations = BlobLocations(),
        events: @escaping @Sendable (TransferEvent) -> Void = { _ in }
    ) {
        self.layout = layout
        self.client = client
        self.known = known
        self.events = events
    }

    /// One image to push: its repository in the registry, its descriptor in the layout, its tags.
    public struct Item: Sendable {
        public var repository: String
        public var descriptor: Descriptor
        public var tags: [String]
        public init(repository: String, descriptor: Descriptor, tags: [String]) {
            self.repository = repository
            self.descriptor = descriptor
            self.tags = tags
        }
    }

    /// Copies each item's graph into its repository (one copy per item; blobs another item already put in the
    /// registry are mounted), tags last.
    public func push(_ items: [Item]) async throws -> [PushedImage] {
        var pushed: [PushedImage] = []
        for item in items {
            let sink = RegistryRepository(client: client, repository: item.repository, known: known, events: events)
            let copied = try await copyImage(
                item.descriptor, from: layout, to: sink, tags: item.tags, jobs: client.options.jobs)
            var referrers: [Descriptor] = []
            for node in copied.graph.nodes {
                referrers += try await Referrers.push(
                    of: node.descriptor.digest, from: layout, to: sink, jobs: client.options.jobs)
            }
            pushed.append(
                PushedImage(
                    reference: "\(client.registry)/\(item.repository)@\(item.descriptor.digest)",
                    repository: item.repository,
                    digest: item.descriptor.digest, mediaType: item.descriptor.mediaType, tags: item.tags,
                    referrers: referrers.isEmpty ? nil : referrers))
        }
        return pushed
    }
}
