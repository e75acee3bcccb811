import Foundation
import KilnOCI
import KilnStore
import Logging

/// A built layer as the cache remembers it.
public struct CachedLayer: Codable, Sendable, Hashable {
    public var diffID: Digest
    public var descriptor: Descriptor
    public var uncompressedSize: Int64
}

/// Maps a layer's cache key (sha256 of its fully resolved spec: entries, content digests, compression,
/// mtime and the encoding version) to the layer built from it, so an unchanged layer is never rebuilt.
/// Records live in the store's private directory and are trusted only while their blob is present and
/// unchanged: each record keeps the blob's stamp (size, mtime, ctime, inode) as Kiln wrote it, and a blob
/// whose stamp differs is hashed again before it is reused. A blob that no longer matches its digest (flipped
/// in place, same size) is removed, so the layer is written anew rather than tagged corrupt.
public struct LayerCache: Sendable {
    let directory: String
    let layout: OCILayout
    let logger: Logger

    struct Record: Codable {
        var layer: CachedLayer
        var blobStamp: FileDigests.Stamp?
    }

    public init(layout: OCILayout, logger: Logger) {
        self.layout = layout
        self.logger = logger
        directory = layout.privateDirectory + "/cache/layers"
    }

    public func lookup(_ key: Digest) -> CachedLayer? {
        guard let data = FileManager.default.contents(atPath: path(key)),
            let record = try? JSONDecoder().decode(Record.self, from: data),
            layout.blobSize(record.layer.descriptor.digest) == record.layer.descriptor.size
        else { return nil }
        let digest = record.layer.descriptor.digest
        let blob = layout.blobPath(digest)
        guard let stamp = try? FileDigests.stamp(blob) else { return nil }
        if stamp == record.blobStamp { return record.layer }
        guard let actual = try? FileDigests.hash(blob) else { return nil }
        guard actual == digest else {
            logger.warning(
                """
                layer blob \(digest) does not match its digest (it hashes to \(actual)); removed, the layer is \
                written again (`kiln fsck` checks the rest of the store)
                """)
            try? layout.removeBlob(digest)
            return nil
        }
        try? remember(record.layer, for: key)
        return record.layer
    }

    public func remember(_ layer: CachedLayer, for key: Digest) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let stamp = try? FileDigests.stamp(layout.blobPath(layer.descriptor.digest))
        try AtomicFile.write(CanonicalJSON.encode(Record(layer: layer, blobStamp: stamp)), to: path(key))
    }

    private func path(_ key: Digest) -> String { "\(directory)/\(key.encoded).json" }
}
