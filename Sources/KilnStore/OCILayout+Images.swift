import Foundation
import KilnOCI

/// One platform's image wherever it was read from (the store, a registry): its manifest and config.
public struct StoredImage: Sendable {
    public var manifestDescriptor: Descriptor
    public var manifest: Manifest
    public var config: ImageConfig
    public var configDescriptor: Descriptor { manifest.config }

    public init(manifestDescriptor: Descriptor, manifest: Manifest, config: ImageConfig) {
        self.manifestDescriptor = manifestDescriptor
        self.manifest = manifest
        self.config = config
    }

    /// The history entries that made layers, aligned with `manifest.layers`.
    public var layerHistory: [ImageConfig.History] { (config.history ?? []).filter { $0.emptyLayer != true } }

    /// What made layer `index`, as its history says.
    public func createdBy(layer index: Int) -> String? {
        let history = layerHistory
        return index < history.count ? history[index].createdBy : nil
    }

    /// The compressed size of everything the image needs: manifest, config and layers.
    public var totalSize: Int64 {
        manifestDescriptor.size + manifest.config.size + manifest.layers.reduce(0) { $0 + $1.size }
    }
}

extension OCILayout {
    /// The image graph under a descriptor, read from the store (every document's digest checked).
    public func graph(from descriptor: Descriptor) throws -> ImageGraph {
        do {
            return try ImageGraph.walk(descriptor) { try readBlob($0.digest) }
        } catch GraphError.malformed(let digest, let mediaType, let detail) {
            throw StoreError.notALayout(
                path: blobPath(digest), reason: "blob is not a valid \(mediaType): \(detail)")
        }
    }

    /// The images a descriptor reaches: itself when it is a manifest, each platform's when it is an index.
    public func images(for descriptor: Descriptor) throws -> [StoredImage] {
        try graph(from: descriptor).manifests.map { node in
            let manifest = try CanonicalJSON.decode(
                Manifest.self, from: node.data, path: blobPath(node.descriptor.digest))
            let data = try readBlob(manifest.config.digest)
            do {
                let config = try CanonicalJSON.decode(
                    ImageConfig.self, from: data, path: blobPath(manifest.config.digest))
                return StoredImage(manifestDescriptor: node.descriptor, manifest: manifest, config: config)
            } catch {
                throw StoreError.notALayout(
                    path: blobPath(manifest.config.digest),
                    reason:
                        "blob is not a valid \(manifest.config.mediaType), \((error as? JSONDocumentError)?.reason ?? "\(error)")"
                )
            }
        }
    }

    /// Every blob digest reachable from a descriptor (manifests, configs, layers, nested indexes, subjects).
    public func reachableBlobs(from descriptor: Descriptor) throws -> Set<Digest> {
        guard ImageGraph.isDocument(descriptor) else { return [descriptor.digest] }
        return try graph(from: descriptor).digests
    }
}

/// The store as one end of a copy: blobs are local files; writes are atomic and never replace a blob.
extension OCILayout: BlobSource, BlobSink {
    public var location: String { "the store \(root)" }

    public func document(_ descriptor: Descriptor) async throws -> Data? {
        hasBlob(descriptor.digest) ? try readBlob(descriptor.digest) : nil
    }

    public func localFile(_ descriptor: Descriptor) -> String? {
        blobSize(descriptor.digest) == descriptor.size ? blobPath(descriptor.digest) : nil
    }

    public func download(_ descriptor: Descriptor, to path: String) async throws {
        guard let file = localFile(descriptor) else {
            throw StoreError.missingBlob(digest: descriptor.digest, layout: root)
        }
        do {
            try FileManager.default.copyItem(atPath: file, toPath: path)
        } catch {
            throw StoreError.io(path: path, operation: "copy a blob to", detail: "\(error)")
        }
    }

    public func has(_ descriptor: Descriptor) async throws -> Bool {
        blobSize(descriptor.digest) == descriptor.size
    }

    /// Downloads into a staging file of the store (the source verifies digest and size), then moves it in.
    public func putBlob(_ descriptor: Descriptor, from source: any BlobSource) async throws {
        try await putBlob(descriptor, from: source, check: { _ in })
    }

    /// As `putBlob`, with `check` run on the staged file first: a blob it refuses never enters the store.
    public func putBlob(
        _ descriptor: Descriptor, from source: any BlobSource, check: @Sendable (String) throws -> Void
    ) async throws {
        let staged = try makeStagingFile()
        try? staged.handle.close()
        unlink(staged.path)
        do {
            try await source.download(descriptor, to: staged.path)
            try check(staged.path)
        } catch {
            staged.discard()
            throw error
        }
        try adopt(fileAt: staged.path, as: descriptor.digest)
    }

    public func putManifest(_ descriptor: Descriptor, data: Data) async throws {
        try writeBlob(data)
    }

    /// Tags `NAME:TAG` in index.json.
    public func tag(_ descriptor: Descriptor, data: Data, as tag: String) async throws {
        try self.tag(descriptor, as: tag)
    }
}
