import Foundation
import KilnHTTP
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

/// A layer a cache had under its key: the store's layer cache (`from` nil), or a `--cache-from` repository
/// (`from`, the repository it was fetched from and adopted into the store).
public struct FoundLayer: Sendable {
    public var layer: CachedLayer
    public var from: String?
}

extension LayerCache {
    /// The layer under `key`: the store's own (its blob protected from `kiln gc`, present and of its size), else
    /// the first `--cache-from` repository with a sound entry, adopted and remembered here; nil when neither has
    /// it. Both kinds of key (plan and content) are looked up through here.
    func find(_ key: Digest, roots: BuildRoots, remote: RegistryLayerCache?) async throws -> FoundLayer? {
        // Protected before it is trusted: a sweep that ran first has removed it, and the size check sees so.
        if let hit = lookup(key), (try? roots.protect([hit.descriptor.digest])) != nil,
            layout.blobSize(hit.descriptor.digest) == hit.descriptor.size
        {
            return FoundLayer(layer: hit, from: nil)
        }
        guard let remote, let (fetched, from) = await remote.fetch(key, protect: roots.protect) else { return nil }
        try remember(fetched, for: key)
        return FoundLayer(layer: fetched, from: from)
    }
}

extension Pipeline {
    /// Every layer with a plan key found under it in the store's layer cache, else in a `--cache-from` repository
    /// (adopted into the store), by plan key; each blob kept from `kiln gc` by `roots`. A poisoned registry
    /// entry is refused with a warning by `RegistryLayerCache.fetch`: the layer is then built here.
    static func planKeyedLayers(
        _ plan: BuildPlan, layout: OCILayout, roots: BuildRoots, transport: HTTPTransport?
    ) async throws -> [String: FoundLayer] {
        let keys = Set(plan.images.flatMap { $0.platforms.flatMap { $0.layers.compactMap(\.key) } })
        guard !keys.isEmpty else { return [:] }
        let cache = LayerCache(layout: layout, logger: plan.options.logger)
        let remote = try transport.flatMap {
            try RegistryLayerCache(options: plan.options, layout: layout, transport: $0)
        }
        var found: [String: FoundLayer] = [:]
        for text in keys.sorted() {
            guard let key = try? Digest(parsing: "sha256:" + text) else { continue }
            found[text] = try await cache.find(key, roots: roots, remote: remote)
        }
        plan.options.logger.debug("layer cache by plan key: \(found.count) of \(keys.count) layers found")
        return found
    }
}

extension BuildPlan {
    /// What prepare must still fetch once the layers in `found` (by plan key) are taken from the cache: the url
    /// inputs and package sets of every other layer, and the environments of the build steps that will run;
    /// and the build steps whose outputs those other layers take. A set whose pins lack their source package
    /// (a lock older than `source`) is fetched for the SBOM.
    func stillNeeded(found: Set<String>, cachedBuilds: Set<String>) -> (
        urls: Set<String>, sets: Set<String>, outputs: Set<String>
    ) {
        var urls: Set<String> = []
        var sets: Set<String> = []
        var outputs: Set<String> = []
        for image in images {
            for platform in image.platforms {
                for layer in platform.layers where layer.key.map({ !found.contains($0) }) ?? true {
                    for content in layer.contents {
                        switch content {
                        case .download(let url, _, _, _): urls.insert(url)
                        case .debs(let set, _), .package(let set, _, _): sets.insert(set)
                        case .buildOutput(let build, _, _, _): outputs.insert(build)
                        case .files, .entry: continue
                        }
                    }
                }
            }
        }
        for build in builds where !cachedBuilds.contains(build.id) { sets.insert(build.environment) }
        for set in packageSets where !builds.contains(where: { $0.environment == set.key }) {
            if set.packages?.contains(where: { $0.source == nil }) ?? true { sets.insert(set.key) }
        }
        return (urls, sets, outputs)
    }
}
