import Foundation
import KilnOCI
import KilnRegistry
import KilnStore

/// One platform's image wherever it was read from: manifest, config and their descriptors.
public struct ResolvedImage: Sendable {
    public var manifestDescriptor: Descriptor
    public var manifest: Manifest
    public var config: ImageConfig
    /// The history entries that made layers, aligned with `manifest.layers`.
    public var layerHistory: [ImageConfig.History] { (config.history ?? []).filter { $0.emptyLayer != true } }

    public func createdBy(layer index: Int) -> String? {
        let history = layerHistory
        return index < history.count ? history[index].createdBy : nil
    }
}

/// Reads manifests and small blobs from the local store when it has them, else from the registry, verifying
/// every digest. The store and the registry are two places an image lives; callers never care which answered.
public struct ImageSource: Sendable {
    public let layout: OCILayout?
    public let client: RegistryClient?

    public init(layout: OCILayout?, client: RegistryClient?) {
        self.layout = layout
        self.client = client
    }

    /// The exact bytes of a manifest or index, by digest.
    public func manifest(_ repository: String, _ digest: Digest) async throws -> Data {
        if let layout, layout.hasBlob(digest) { return try layout.readBlob(digest) }
        guard let client else { throw StoreError.missingBlob(digest: digest, layout: layout?.root ?? "the store") }
        return try await client.manifest(repository, digest.description).data
    }

    /// A small blob (a config, a release document), by descriptor.
    public func blob(_ repository: String, _ descriptor: Descriptor) async throws -> Data {
        if let layout, layout.hasBlob(descriptor.digest) { return try layout.readBlob(descriptor.digest) }
        guard let client else {
            throw StoreError.missingBlob(digest: descriptor.digest, layout: layout?.root ?? "the store")
        }
        let temp = FileManager.default.temporaryDirectory.path + "/kiln-blob-\(UUID().uuidString.lowercased())"
        defer { try? FileManager.default.removeItem(atPath: temp) }
        try await client.downloadBlob(repository, descriptor, to: temp)
        guard let data = FileManager.default.contents(atPath: temp) else {
            throw StoreError.io(path: temp, operation: "read a downloaded blob", detail: "missing")
        }
        return data
    }

    /// Each platform's image under `digest` (one for a manifest, one per child for an index).
    public func images(_ repository: String, _ digest: Digest, mediaType: String) async throws -> [ResolvedImage] {
        let root = Descriptor(mediaType: mediaType, digest: digest, size: 0)
        let graph = try await ImageGraph.walk(root) { try await manifest(repository, $0.digest) }
        var result: [ResolvedImage] = []
        for node in graph.manifests {
            let manifest = try CanonicalJSON.decode(Manifest.self, from: node.data)
            let config = try CanonicalJSON.decode(ImageConfig.self, from: try await blob(repository, manifest.config))
            var descriptor = Descriptor(mediaType: node.descriptor.mediaType, bytes: node.data)
            // An index entry says its platform; a lone manifest's is its config's.
            descriptor.platform = node.descriptor.digest == digest ? config.platform : node.descriptor.platform
            result.append(ResolvedImage(manifestDescriptor: descriptor, manifest: manifest, config: config))
        }
        return result
    }
}
