import Foundation
import KilnOCI

/// Reading images from any source, the store and a registry alike: callers never care which answered.
extension BlobSource {
    /// A small blob's exact bytes (a config, a document carried as a layer), its digest checked.
    public func contents(_ descriptor: Descriptor) async throws -> Data {
        let (path, owned) = try await materialize(
            descriptor, in: FileManager.default.temporaryDirectory.path + "/kiln-blob")
        defer { if owned { unlink(path) } }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StoreError.io(path: path, operation: "read a blob from", detail: "it is gone")
        }
        let actual = Digest.sha256(data)
        guard descriptor.digest.algorithm != "sha256" || actual == descriptor.digest else {
            throw StoreError.corruptBlob(path: path, expected: descriptor.digest, actual: actual)
        }
        return data
    }

    /// Each platform's image under `root` (one for a manifest, one per child for an index). `root`'s size may
    /// be unknown (0): each image's manifest descriptor is made from the bytes read, with its index entry's
    /// platform, or its config's for a lone manifest.
    public func images(under root: Descriptor) async throws -> [StoredImage] {
        let graph = try await ImageGraph.walk(root) { descriptor in
            guard let data = try await document(descriptor) else {
                throw GraphCopyError.absent(descriptor.digest, location)
            }
            return data
        }
        var result: [StoredImage] = []
        for node in graph.manifests {
            let manifest = try CanonicalJSON.decode(Manifest.self, from: node.data)
            let config = try CanonicalJSON.decode(ImageConfig.self, from: try await contents(manifest.config))
            var descriptor = Descriptor(mediaType: node.descriptor.mediaType, bytes: node.data)
            descriptor.platform = node.descriptor.digest == root.digest ? config.platform : node.descriptor.platform
            result.append(StoredImage(manifestDescriptor: descriptor, manifest: manifest, config: config))
        }
        return result
    }
}

/// The store when it has what is asked for, else another source (a registry repository): release diffs and
/// deployment files read what was built here from disk and the rest from the registry.
public struct StoreFirst: BlobSource {
    public let store: OCILayout?
    public let then: any BlobSource

    public init(_ store: OCILayout?, then: any BlobSource) {
        self.store = store
        self.then = then
    }

    public var location: String { then.location }

    public func document(_ descriptor: Descriptor) async throws -> Data? {
        if let data = try await store?.document(descriptor) { return data }
        return try await then.document(descriptor)
    }

    public func localFile(_ descriptor: Descriptor) -> String? {
        store?.localFile(descriptor) ?? then.localFile(descriptor)
    }

    public func download(_ descriptor: Descriptor, to path: String) async throws {
        if let store, store.localFile(descriptor) != nil { return try await store.download(descriptor, to: path) }
        try await then.download(descriptor, to: path)
    }
}
