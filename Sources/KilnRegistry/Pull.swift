import Foundation
import KilnLayer
import KilnOCI
import KilnStore

/// Fetches an image into a layout, verifying every digest and size before anything is stored.
public struct Puller: Sendable {
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

    /// Pulls `reference`. From an index, only `platforms` are fetched (all when nil); with one platform the
    /// layout gets that platform's manifest, with several the original index (all its children are fetched).
    /// Returns the descriptor stored (not tagged: the caller decides the tag).
    public func pull(_ reference: Reference, platforms: [Platform]?) async throws -> Descriptor {
        let repository = reference.repository
        let (data, descriptor) = try await client.manifest(repository, reference.identifier)
        if MediaType.indexTypes.contains(descriptor.mediaType) {
            let index = try JSONDecoder().decode(ImageIndex.self, from: data)
            let wanted = index.manifests.filter { child in
                guard let platforms else { return true }
                guard let p = child.platform else { return false }
                return platforms.contains {
                    $0.os == p.os && $0.architecture == p.architecture && ($0.variant == nil || $0.variant == p.variant)
                }
            }
            guard !wanted.isEmpty else {
                let offered = index.manifests.compactMap { $0.platform?.description }.joined(separator: ", ")
                throw RegistryError(
                    registry: client.registry, repository: repository, step: "choosing a platform",
                    message:
                        "\(reference) has no image for \(platforms?.map(\.description).joined(separator: ", ") ?? "")",
                    hint: "it offers: \(offered)")
            }
            if wanted.count == 1 && platforms?.count == 1 {
                return try await pullManifest(repository, wanted[0])
            }
            for child in wanted { _ = try await pullManifest(repository, child) }
            if wanted.count != index.manifests.count {
                // A partial index would point at manifests the layout lacks: store one of our own.
                let own = try CanonicalJSON.encode(ImageIndex(manifests: wanted))
                try layout.writeBlob(own)
                return Descriptor(mediaType: MediaType.imageIndex, bytes: own)
            }
            try layout.writeBlob(data)
            return descriptor
        }
        try await storeImage(repository, manifest: data)
        try layout.writeBlob(data)
        return descriptor
    }

    func pullManifest(_ repository: String, _ descriptor: Descriptor) async throws -> Descriptor {
        let (data, fetched) = try await client.manifest(repository, descriptor.digest.description)
        guard fetched.digest == descriptor.digest else {
            throw RegistryError(
                registry: client.registry, repository: repository, step: "fetching \(descriptor.digest)",
                message: "got \(fetched.digest) instead")
        }
        try await storeImage(repository, manifest: data)
        try layout.writeBlob(data)
        var result = descriptor
        result.mediaType = fetched.mediaType
        return result
    }

    func storeImage(_ repository: String, manifest data: Data) async throws {
        let manifest = try JSONDecoder().decode(Manifest.self, from: data)
        let blobs = [manifest.config] + manifest.layers
        let jobs = max(1, client.options.jobs)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var running = 0
            for blob in blobs where layout.blobSize(blob.digest) != blob.size {
                if running >= jobs {
                    try await group.next()
                    running -= 1
                }
                group.addTask { try await self.fetch(repository, blob) }
                running += 1
            }
            try await group.waitForAll()
        }
    }

    func fetch(_ repository: String, _ blob: Descriptor) async throws {
        let staged = try layout.makeStagingFile()
        try? staged.handle.close()
        let events = self.events
        do {
            try await client.downloadBlob(
                repository, blob, to: staged.path,
                progress: { done, _ in
                    events(.blobProgress(repository: repository, digest: blob.digest, done: done, total: blob.size))
                })
            // Layers are checked like archive inputs (escapes, links out, devices) before the store keeps them.
            if blob.mediaType.contains(".layer.") || blob.mediaType.contains(".rootfs.") {
                try LayerReader.validate(at: staged.path, name: "\(client.registry)/\(repository)@\(blob.digest)")
            }
        } catch {
            staged.discard()
            throw error
        }
        try layout.adopt(fileAt: staged.path, as: blob.digest)
        events(.blobDownloaded(repository: repository, digest: blob.digest, size: blob.size))
    }
}
