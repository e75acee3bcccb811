import Foundation
import KilnOCI

/// One platform's image as stored: its manifest, config and the bytes they were read from.
public struct StoredImage: Sendable {
    public var manifestDescriptor: Descriptor
    public var manifest: Manifest
    public var config: ImageConfig
    public var configDescriptor: Descriptor { manifest.config }

    /// The compressed size of everything the image needs: manifest, config and layers.
    public var totalSize: Int64 {
        manifestDescriptor.size + manifest.config.size + manifest.layers.reduce(0) { $0 + $1.size }
    }
}

extension OCILayout {
    /// The images a descriptor reaches: itself when it is a manifest, each platform's when it is an index.
    public func images(for descriptor: Descriptor) throws -> [StoredImage] {
        let data = try readBlob(descriptor.digest)
        if MediaType.indexTypes.contains(descriptor.mediaType) {
            let index = try decode(ImageIndex.self, data, descriptor)
            return try index.manifests.filter { MediaType.manifestTypes.contains($0.mediaType) }.flatMap {
                try images(for: $0)
            }
        }
        let manifest = try decode(Manifest.self, data, descriptor)
        let config = try decode(ImageConfig.self, readBlob(manifest.config.digest), manifest.config)
        return [StoredImage(manifestDescriptor: descriptor, manifest: manifest, config: config)]
    }

    /// Every blob digest reachable from a descriptor (manifests, configs, layers, nested indexes).
    public func reachableBlobs(from descriptor: Descriptor) throws -> Set<Digest> {
        var seen: Set<Digest> = [descriptor.digest]
        guard
            MediaType.indexTypes.contains(descriptor.mediaType)
                || MediaType.manifestTypes.contains(descriptor.mediaType)
        else { return seen }
        let data = try readBlob(descriptor.digest)
        if MediaType.indexTypes.contains(descriptor.mediaType) {
            for child in try decode(ImageIndex.self, data, descriptor).manifests {
                seen.formUnion(try reachableBlobs(from: child))
            }
        } else {
            let manifest = try decode(Manifest.self, data, descriptor)
            seen.insert(manifest.config.digest)
            manifest.layers.forEach { seen.insert($0.digest) }
            if let subject = manifest.subject { seen.insert(subject.digest) }
        }
        return seen
    }

    private func decode<T: Decodable>(_ type: T.Type, _ data: Data, _ descriptor: Descriptor) throws -> T {
        do {
            return try CanonicalJSON.decode(type, from: data, path: blobPath(descriptor.digest))
        } catch {
            throw StoreError.notALayout(
                path: blobPath(descriptor.digest),
                reason:
                    "blob is not a valid \(descriptor.mediaType), \((error as? JSONDocumentError)?.reason ?? "\(error)")"
            )
        }
    }
}
