import Foundation
import KilnOCI
import KilnStore

/// A built layer as the cache remembers it.
public struct CachedLayer: Codable, Sendable, Hashable {
    public var diffID: Digest
    public var descriptor: Descriptor
    public var uncompressedSize: Int64
}

/// Maps a layer's cache key (sha256 of its fully resolved spec: entries, content digests, compression,
/// mtime and the encoding version) to the layer built from it, so an unchanged layer is never rebuilt.
/// Records live in the store's private directory and are trusted only while their blob is present.
public struct LayerCache: Sendable {
    let directory: String
    let layout: OCILayout

    public init(layout: OCILayout) {
        self.layout = layout
        directory = layout.privateDirectory + "/cache/layers"
    }

    public func lookup(_ key: Digest) -> CachedLayer? {
        guard let data = FileManager.default.contents(atPath: path(key)),
            let record = try? JSONDecoder().decode(CachedLayer.self, from: data),
            layout.blobSize(record.descriptor.digest) == record.descriptor.size
        else { return nil }
        return record
    }

    public func remember(_ layer: CachedLayer, for key: Digest) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try AtomicFile.write(CanonicalJSON.encode(layer), to: path(key))
    }

    private func path(_ key: Digest) -> String { "\(directory)/\(key.encoded).json" }
}
