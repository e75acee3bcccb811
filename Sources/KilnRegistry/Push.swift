import Foundation
import KilnOCI
import KilnStore

/// What push and pull report while they work.
public enum TransferEvent: Sendable {
    case blobSkipped(repository: String, digest: Digest, size: Int64)
    case blobMounted(repository: String, digest: Digest, from: String, size: Int64)
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
}

/// Publishes images from a layout: blobs (HEAD, mount, upload), then manifests by digest, then indexes, then
/// tags last, so a tag never points at something incomplete. Idempotent: what the registry has is skipped.
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

    public func push(_ items: [Item]) async throws -> [PushedImage] {
        var pushed: [PushedImage] = []
        // digest → a repository of this registry that has it (the source for cross-repository mounts).
        let known = BlobLocations()
        for item in items {
            let (blobs, manifests) = try graph(item.descriptor)
            try await pushBlobs(blobs, to: item.repository, known: known)
            // A re-push is HEAD requests only: manifests and tags the registry already has are left alone.
            for (descriptor, data) in manifests
            where try await client.manifestDescriptor(item.repository, descriptor.digest.description) == nil {
                try await client.putManifest(
                    item.repository, descriptor.digest.description, data: data, mediaType: descriptor.mediaType)
                events(.manifestPushed(repository: item.repository, reference: descriptor.digest.description))
            }
            let top = try layout.readBlob(item.descriptor.digest)
            for tag in item.tags
            where try await client.manifestDescriptor(item.repository, tag)?.digest != item.descriptor.digest {
                try await client.putManifest(item.repository, tag, data: top, mediaType: item.descriptor.mediaType)
                events(.manifestPushed(repository: item.repository, reference: tag))
            }
            pushed.append(
                PushedImage(
                    reference: "\(client.registry)/\(item.repository)@\(item.descriptor.digest)",
                    repository: item.repository,
                    digest: item.descriptor.digest, mediaType: item.descriptor.mediaType, tags: item.tags))
        }
        return pushed
    }

    /// Blobs (configs and layers) and manifests (children before parents) reachable from a descriptor.
    func graph(_ root: Descriptor) throws -> (blobs: [Descriptor], manifests: [(Descriptor, Data)]) {
        var blobs: [Descriptor] = []
        var manifests: [(Descriptor, Data)] = []
        var seen = Set<Digest>()
        func visit(_ descriptor: Descriptor) throws {
            guard seen.insert(descriptor.digest).inserted else { return }
            let data = try layout.readBlob(descriptor.digest)
            if MediaType.indexTypes.contains(descriptor.mediaType) {
                for child in try JSONDecoder().decode(ImageIndex.self, from: data).manifests { try visit(child) }
            } else {
                let manifest = try JSONDecoder().decode(Manifest.self, from: data)
                for blob in [manifest.config] + manifest.layers where seen.insert(blob.digest).inserted {
                    blobs.append(blob)
                }
            }
            manifests.append((descriptor, data))
        }
        try visit(root)
        return (blobs, manifests)
    }

    func pushBlobs(_ blobs: [Descriptor], to repository: String, known: BlobLocations) async throws {
        let jobs = max(1, client.options.jobs)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var running = 0
            for blob in blobs {
                if running >= jobs {
                    try await group.next()
                    running -= 1
                }
                group.addTask { try await self.pushBlob(blob, to: repository, known: known) }
                running += 1
            }
            try await group.waitForAll()
        }
    }

    func pushBlob(_ blob: Descriptor, to repository: String, known: BlobLocations) async throws {
        if try await client.blobSize(repository, blob.digest) != nil {
            known.record(blob.digest, in: repository)
            events(.blobSkipped(repository: repository, digest: blob.digest, size: blob.size))
            return
        }
        var session: URL?
        if let source = known.repository(for: blob.digest, other: repository) {
            switch try await client.mountBlob(repository, blob.digest, from: source) {
            case .mounted:
                known.record(blob.digest, in: repository)
                events(.blobMounted(repository: repository, digest: blob.digest, from: source, size: blob.size))
                return
            case .session(let url): session = url
            case .refused: break
            }
        }
        guard layout.blobSize(blob.digest) == blob.size else {
            throw StoreError.missingBlob(digest: blob.digest, layout: layout.root)
        }
        let events = self.events
        try await client.uploadBlob(
            repository, digest: blob.digest, size: blob.size, path: layout.blobPath(blob.digest), session: session,
            progress: { done in
                events(.blobProgress(repository: repository, digest: blob.digest, done: done, total: blob.size))
            })
        known.record(blob.digest, in: repository)
        events(.blobUploaded(repository: repository, digest: blob.digest, size: blob.size))
    }
}

/// Which repository of the registry holds which blob, learnt during one push.
final class BlobLocations: @unchecked Sendable {
    private let lock = NSLock()
    private var places: [Digest: [String]] = [:]

    func record(_ digest: Digest, in repository: String) {
        lock.withLock { places[digest, default: []].append(repository) }
    }

    func repository(for digest: Digest, other excluded: String) -> String? {
        lock.withLock { places[digest]?.first { $0 != excluded } }
    }
}
