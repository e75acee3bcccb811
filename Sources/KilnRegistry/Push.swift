import Foundation
import KilnOCI
import KilnStore
import Synchronization

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

/// Publishes images from a layout: a `PushPlan` (or items) is copied from the store as one graph
/// (`copyImages`: blobs HEAD, mount, upload; then manifests by digest, indexes, and tags last), with each
/// manifest's stored referrers (SBOMs, see `Referrers`) as part of the graph, made findable as soon as that
/// image's manifests are in, and the cosign attachments a pull stored (`.sig`, `.att`). Idempotent: what the registry has is skipped. Where blobs were seen is kept by the client
/// (`RegistryClient.blobLocations`) and written back to its cache.
public struct Pusher: Sendable {
    public let layout: OCILayout
    public let client: RegistryClient
    public let events: @Sendable (TransferEvent) -> Void

    public init(
        layout: OCILayout, client: RegistryClient, events: @escaping @Sendable (TransferEvent) -> Void = { _ in }
    ) {
        self.layout = layout
        self.client = client
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

    /// Pushes what `plan` names; results in the order of `plan.images`.
    public func push(_ plan: PushPlan) async throws -> [PushedImage] {
        try await push(plan.images.map { Item(repository: $0.repository, descriptor: $0.descriptor, tags: $0.tags) })
    }

    /// Pushes every item as one graph (`copyImages`): each blob shared by several images is uploaded once and
    /// mounted into the other repositories, manifests follow bottom-up, tags last; each image's referrers (SBOMs)
    /// as soon as its manifests are in. Results are in the order of `items`.
    public func push(_ items: [Item]) async throws -> [PushedImage] {
        defer { client.saveBlobLocations() }
        // One sink per repository, shared by the items that go there.
        var byRepository: [String: RegistryRepository] = [:]
        let sinks = items.map { item in
            if let sink = byRepository[item.repository] { return sink }
            let sink = RegistryRepository(client: client, repository: item.repository, events: events)
            byRepository[item.repository] = sink
            return sink
        }
        let jobs = client.options.jobs
        var targets = items.indices.map {
            CopyTarget(items[$0].descriptor, to: sinks[$0], place: items[$0].repository, tags: items[$0].tags)
        }
        // The referrers the store holds for each image's manifests (SBOMs) go as targets of the same copy, in
        // the image's repository: their blobs beside the fleet's, their manifests in the same job as the
        // image's, right after it. Then the image's own job makes them findable (the referrers index).
        var attached: [Referrers.Attached] = []
        for index in items.indices {
            let graph = try layout.graph(from: items[index].descriptor)
            attached.append(
                try await Referrers.attached(
                    to: graph, from: layout, sink: sinks[index], place: items[index].repository))
            targets += attached[index].targets
        }
        let referrers = Mutex([[Descriptor]](repeating: [], count: items.count))
        _ = try await copyImages(targets, from: layout, jobs: jobs) { [attached] index, graph in
            guard index < items.count else { return }
            let found = try await Referrers.makeFindable(attached[index], in: sinks[index])
            referrers.withLock { $0[index] = found }
            // Signatures and attestations a pull stored (`CosignAttachments`), under their tags: one transfer
            // at a time within this job, so the copy's `jobs` bound holds.
            for node in graph.nodes {
                _ = try await CosignAttachments.push(
                    of: node.descriptor.digest, from: layout, to: sinks[index], jobs: 1)
            }
        }
        let found = referrers.withLock { $0 }
        return items.indices.map { index in
            let item = items[index]
            let found = found[index]
            return PushedImage(
                reference: "\(client.registry)/\(item.repository)@\(item.descriptor.digest)",
                repository: item.repository,
                digest: item.descriptor.digest, mediaType: item.descriptor.mediaType, tags: item.tags,
                referrers: found.isEmpty ? nil : found)
        }
    }
}
