import Foundation
import KilnOCI
import KilnStore
import Logging
import Synchronization

/// One repository of a registry as one end of a copy. As a sink it skips what the registry has (HEAD),
/// mounts blobs another repository of the same registry holds, and uploads the rest from a local file;
/// as a source it reads manifests (cached: a walk reads each once) and downloads blobs, verifying digests.
public final class RegistryRepository: BlobSource, BlobSink, Sendable {
    public let client: RegistryClient
    public let repository: String
    /// Where the registry's repositories hold blobs: the client's, shared by every repository of a push.
    var known: BlobLocations { client.blobLocations }
    let events: @Sendable (TransferEvent) -> Void
    private let documents = Mutex<[Digest: (data: Data, descriptor: Descriptor)]>([:])
    /// Manifests this sink put by digest: no tag can name one yet, so tagging it needs no look first.
    private let written = Mutex(Set<Digest>())

    public init(
        client: RegistryClient, repository: String, events: @escaping @Sendable (TransferEvent) -> Void = { _ in }
    ) {
        self.client = client
        self.repository = repository
        self.events = events
    }

    public var location: String { "\(client.registry)/\(repository)" }

    /// A manifest or index by tag or digest, as the registry serves it (kept for the walk that follows).
    public func resolve(_ reference: String) async throws -> (data: Data, descriptor: Descriptor) {
        let fetched = try await client.manifest(repository, reference)
        documents.withLock { $0[fetched.descriptor.digest] = fetched }
        return fetched
    }

    // MARK: Source

    public func document(_ descriptor: Descriptor) async throws -> Data? {
        if let cached = documents.withLock({ $0[descriptor.digest] }) { return cached.data }
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
        documents.withLock { $0[digest]?.descriptor.mediaType }
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

    /// Mounts the blob from a repository known to hold it, else uploads it. A refused mount (a stale entry of
    /// the blob-location cache: the registry was emptied or garbage-collected) drops that entry and is tried at
    /// most once more, from a repository this run put the blob in; else the blob is uploaded. So a stale cache
    /// costs at most one refused mount per blob, never a re-upload for each image that shares it.
    public func putBlob(_ descriptor: Descriptor, from source: any BlobSource) async throws {
        var session: URL?
        var refused = false
        while let (from, confirmed) = known.source(for: descriptor.digest, other: repository), !refused || confirmed {
            switch try await client.mountBlob(repository, descriptor.digest, from: from) {
            case .mounted:
                known.record(descriptor.digest, in: repository)
                events(
                    .blobMounted(repository: repository, digest: descriptor.digest, from: from, size: descriptor.size))
                return
            case .session(let url): session = url
            case .refused: session = nil
            }
            known.forget(descriptor.digest, in: from)
            client.logger.debug(
                "\(repository): mount of \(descriptor.digest) from \(from) refused; that location is dropped")
            events(.mountRefused(repository: repository, digest: descriptor.digest, from: from))
            if refused { break }
            refused = true
        }
        let events = self.events
        let repository = self.repository
        let progress: @Sendable (Int64) -> Void = { done in
            events(.blobProgress(repository: repository, digest: descriptor.digest, done: done, total: descriptor.size))
        }
        if let content = streamed(descriptor, from: source) {
            // Another registry's blob goes straight through as it arrives: nothing is written to disk or held.
            try await client.uploadBlob(
                repository, digest: descriptor.digest, size: descriptor.size, content: content, session: session,
                progress: progress)
        } else {
            let (path, owned) = try await source.materialize(
                descriptor, in: FileManager.default.temporaryDirectory.path + "/kiln-copy")
            defer { if owned { unlink(path) } }
            try await client.uploadBlob(
                repository, digest: descriptor.digest, size: descriptor.size, path: path, session: session,
                progress: progress)
        }
        known.record(descriptor.digest, in: repository)
        events(.blobUploaded(repository: repository, digest: descriptor.digest, size: descriptor.size))
    }

    /// The blob streamed from `source` when it is a registry repository (nil: use a local file, the source's own
    /// or a download).
    func streamed(_ descriptor: Descriptor, from source: any BlobSource) -> RegistryClient.UploadContent? {
        guard let remote = source as? RegistryRepository, descriptor.size > 0 else { return nil }
        return .stream(origin: "\(remote.location)@\(descriptor.digest)") { offset, length in
            try await remote.client.openBlob(
                remote.repository, descriptor.digest, offset: offset, length: length, size: descriptor.size)
        }
    }

    public func putManifest(_ descriptor: Descriptor, data: Data) async throws {
        try await client.putManifest(
            repository, descriptor.digest.description, data: data, mediaType: descriptor.mediaType)
        written.withLock { _ = $0.insert(descriptor.digest) }
        events(.manifestPushed(repository: repository, reference: descriptor.digest.description))
    }

    /// Moves the tag only when it points elsewhere (a re-push sends HEAD requests alone); a manifest this sink
    /// just put is tagged without asking.
    public func tag(_ descriptor: Descriptor, data: Data, as tag: String) async throws {
        let new = written.withLock { $0.contains(descriptor.digest) }
        if !new, try await client.manifestDescriptor(repository, tag)?.digest == descriptor.digest { return }
        try await client.putManifest(repository, tag, data: data, mediaType: descriptor.mediaType)
        events(.manifestPushed(repository: repository, reference: tag))
    }
}
