import Foundation
import KilnOCI
import KilnStore

/// One repository of a registry as one end of a copy. As a sink it skips what the registry has (HEAD),
/// mounts blobs another repository of the same registry holds, and uploads the rest from a local file;
/// as a source it reads manifests (cached: a walk reads each once) and downloads blobs, verifying digests.
public final class RegistryRepository: BlobSource, BlobSink, @unchecked Sendable {
    public let client: RegistryClient
    public let repository: String
    let known: BlobLocations
    let events: @Sendable (TransferEvent) -> Void
    private let lock = NSLock()
    private var documents: [Digest: (data: Data, descriptor: Descriptor)] = [:]

    public init(
        client: RegistryClient, repository: String, known: BlobLocations = BlobLocations(),
        events: @escaping @Sendable (TransferEvent) -> Void = { _ in }
    ) {
        self.client = client
        self.repository = repository
        self.known = known
        self.events = events
    }

    public var location: String { "\(client.registry)/\(repository)" }

    /// A manifest or index by tag or digest, as the registry serves it (kept for the walk that follows).
    public func resolve(_ reference: String) async throws -> (data: Data, descriptor: Descriptor) {
        let fetched = try await client.manifest(repository, reference)
        lock.withLock { documents[fetched.descriptor.digest] = fetched }
        return fetched
    }

    // MARK: Source

    public func document(_ descriptor: Descriptor) async throws -> Data? {
        if let cached = lock.withLock({ documents[descriptor.digest] }) { return cached.data }
        let fetched = try await resolve(descriptor.digest.description)
        guard fetched.descriptor.digest == descriptor.digest else {
            throw RegistryError(
                registry: client.registry, repository: repository, step: "fetching \(descriptor.digest)",
                message: "got \(fetched.descriptor.digest) instead")
        }
        return fetched.data
    }

    /// The media type the registry served a fetched document with.
    public func servedMediaType(_ digest: Digest) -> String? {
        lock.withLock { documents[digest]?.descriptor.mediaType }
    }

    public func localFile(_ descriptor: Descriptor) -> String? { nil }

    public func download(_ descriptor: Descriptor, to path: String) async throws {
        let events = self.events
        let repository = self.repository
        try await client.downloadBlob(
            repository, descriptor, to: path,
            progress: { done, _ in
                events(
                    .blobProgress(repository: repository, digest: descriptor.digest, done: done, total: descriptor.size)
                )
            })
        events(.blobDownloaded(repository: repository, digest: descriptor.digest, size: descriptor.size))
    }

    // MARK: Sink

    public func has(_ descriptor: Descriptor) async throws -> Bool {
        if ImageGraph.isDocument(descriptor) {
            return try await client.manifestDescriptor(repository, descriptor.digest.description) != nil
        }
        guard try await client.blobSize(repository, descriptor.digest) != nil else { return false }
        known.record(descriptor.digest, in: repository)
        events(.blobSkipped(repository: repository, digest: descriptor.digest, size: descriptor.size))
        return true
    }

    public func putBlob(_ descriptor: Descriptor, from source: any BlobSource) async throws {
        var session: URL?
        if let from = known.repository(for: descriptor.digest, other: repository) {
            switch try await client.mountBlob(repository, descriptor.digest, from: from) {
            case .mounted:
                known.record(descriptor.digest, in: repository)
                events(
                    .blobMounted(repository: repository, digest: descriptor.digest, from: from, size: descriptor.size))
                return
            case .session(let url): session = url
            case .refused: break
            }
        }
        let (path, owned) = try await source.materialize(
            descriptor, in: FileManager.default.temporaryDirectory.path + "/kiln-copy")
        defer { if owned { unlink(path) } }
        let events = self.events
        let repository = self.repository
        try await client.uploadBlob(
            repository, digest: descriptor.digest, size: descriptor.size, path: path, session: session,
            progress: { done in
                events(
                    .blobProgress(repository: repository, digest: descriptor.digest, done: done, total: descriptor.size)
                )
            })
        known.record(descriptor.digest, in: repository)
        events(.blobUploaded(repository: repository, digest: descriptor.digest, size: descriptor.size))
    }

    public func putManifest(_ descriptor: Descriptor, data: Data) async throws {
        try await client.putManifest(
            repository, descriptor.digest.description, data: data, mediaType: descriptor.mediaType)
        events(.manifestPushed(repository: repository, reference: descriptor.digest.description))
    }

    /// Moves the tag only when it points elsewhere (a re-push sends HEAD requests alone).
    public func tag(_ descriptor: Descriptor, data: Data, as tag: String) async throws {
        guard try await client.manifestDescriptor(repository, tag)?.digest != descriptor.digest else { return }
        try await client.putManifest(repository, tag, data: data, mediaType: descriptor.mediaType)
        events(.manifestPushed(repository: repository, reference: tag))
    }
}

/// Which repository of a registry holds which blob, learnt while copying (the source of cross-repository
/// mounts).
public final class BlobLocations: @unchecked Sendable {
    private let lock = NSLock()
    private var places: [Digest: [String]] = [:]

    public init() {}

    func record(_ digest: Digest, in repository: String) {
        lock.withLock { places[digest, default: []].append(repository) }
    }

    func repository(for digest: Digest, other excluded: String) -> String? {
        lock.withLock { places[digest]?.first { $0 != excluded } }
    }
}
