import Foundation
import KilnHTTP
import KilnLayer
import KilnOCI
import KilnRegistry
import KilnStore
import Logging

/// The layer cache shared through registries (`--cache-from`, `--cache-to`): a layer the store lacks is looked
/// up under its layer-cache key (`LayerWriting.cacheKey`) in each `--cache-from` repository in turn, and every
/// layer the build uses is published to the `--cache-to` repository under its key. The entry's record is the
/// `CachedLayer` the key produced; an entry whose blob is not the one its record names, or whose blob does not
/// hash to its digest or does not read as a safe layer, is refused with a warning and the layer is built here.
struct RegistryLayerCache: Sendable {
    let from: [RegistryCache]
    let to: RegistryCache?
    let layout: OCILayout
    let logger: Logger

    /// Opens the repositories the options name (nil when none).
    init?(options: BuildOptions, layout: OCILayout, transport: HTTPTransport) throws {
        guard let (from, to) = try options.registryCaches(transport: transport) else { return nil }
        self.from = from
        self.to = to
        self.layout = layout
        logger = options.logger
    }

    /// The layer under `key` from the first `--cache-from` repository that has a sound entry, adopted into the
    /// store; nil when none has.
    func fetch(_ key: Digest, protect: ([Digest]) throws -> Void) async -> (CachedLayer, from: String)? {
        for cache in from {
            let place = cache.repository.location
            do {
                let entry: RegistryCache.Entry
                switch try await cache.get(.layer, key: key.encoded) {
                case .hit(let found): entry = found
                case .miss: continue
                case .refused(let why):
                    logger.warning("layer cache entry refused (\(place)): \(why); the layer is built here")
                    continue
                }
                let layer = try CanonicalJSON.decode(CachedLayer.self, from: entry.record)
                guard entry.blobs == [layer.descriptor] else {
                    logger.warning(
                        """
                        layer cache entry \(key.encoded.prefix(12)) in \(place) refused: its blob is not the \
                        \(layer.descriptor.digest) its record names; the layer is built here
                        """)
                    continue
                }
                try protect([layer.descriptor.digest])
                if layout.blobSize(layer.descriptor.digest) != layer.descriptor.size {
                    let staged = try layout.makeStagingFile()
                    try? staged.handle.close()
                    do {
                        try await cache.download(layer.descriptor, to: staged.path + ".blob")
                        _ = try LayerReader.validate(at: staged.path + ".blob", name: "cached layer")
                        try layout.adopt(fileAt: staged.path + ".blob", as: layer.descriptor.digest)
                        staged.discard()
                    } catch {
                        unlink(staged.path + ".blob")
                        staged.discard()
                        throw error
                    }
                }
                return (layer, place)
            } catch {
                logger.warning(
                    "layer cache entry \(key.encoded.prefix(12)) in \(place) refused: \(error); the layer is built here"
                )
            }
        }
        return nil
    }

    /// Publishes `layer` under `key` to `--cache-to` (what the repository has is skipped). A failure is a
    /// warning: the build itself succeeded.
    func publish(_ layer: CachedLayer, key: Digest) async {
        guard let to else { return }
        do {
            try await to.put(
                .layer, key: key.encoded, record: CanonicalJSON.encode(layer),
                blobs: [(layer.descriptor, layout.blobPath(layer.descriptor.digest))])
        } catch {
            logger.warning(
                "could not publish layer \(key.encoded.prefix(12)) to \(to.repository.location): \(error)")
        }
    }
}

extension BuildOptions {
    /// The `--cache-from` repositories (in order) and the `--cache-to` one, speaking through `transport`; nil
    /// when neither is given.
    func registryCaches(transport: HTTPTransport) throws -> (from: [RegistryCache], to: RegistryCache?)? {
        guard !cacheFrom.isEmpty || cacheTo != nil else { return nil }
        func cache(_ text: String) throws -> RegistryCache {
            let reference: Reference
            do { reference = try Reference(parsing: text) } catch {
                throw BuildError.cacheReference(text, reason: "\(error)")
            }
            let client = RegistryClient(registry: reference.registry, transport: transport, options: registry)
            return RegistryCache(repository: RegistryRepository(client: client, repository: reference.repository))
        }
        return (try cacheFrom.map(cache), try cacheTo.map(cache))
    }
}
