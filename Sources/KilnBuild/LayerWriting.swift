import Foundation
import KilnLayer
import KilnOCI
import KilnProcess
import KilnRecipe
import KilnStore
import Logging

/// Layers by content: reuse a layer whose cache key is known, else write it into the store and remember it.
extension Builder {
    /// The planned layer: found under its plan key before prepare (its inputs were not fetched), else reused or
    /// written by its content key, and then remembered (and with `--cache-to` published) under its plan key too.
    func layer(
        _ spec: PlannedLayer, platform: Platform, unpacked: inout Unpacked, image: String,
        compression: LayerCompression
    ) async throws -> (CachedLayer, reused: Bool) {
        let planKey = spec.key.flatMap { try? Digest(parsing: "sha256:" + $0) }
        if let planKey, let found = prepared.planKeyedLayers[planKey.encoded] {
            let descriptor = found.layer.descriptor
            // Kept from `kiln gc` since prepare found it; anything else removing it is not Kiln's doing.
            guard layout.blobSize(descriptor.digest) == descriptor.size else {
                throw BuildError.internalError(
                    "layer \(spec.name) of \(image) (\(descriptor.digest)) left the store during the build: build again"
                )
            }
            return await reuse(found, key: planKey, image: image, name: spec.name)
        }
        let (entries, foreign) = try entries(spec, platform: platform, unpacked: &unpacked)
        let (layer, reused) = try await layer(
            entries, image: image, name: spec.name, compression: compression, foreign: foreign)
        if let planKey {
            try cache.remember(layer, for: planKey)
            await remote?.publish(layer, key: planKey)
        }
        return (layer, reused)
    }

    /// Reuses the layer if its key is cached, else writes it into the store.
    ///
    /// A layer with input files this store has never hashed is written straight away, hashing those files as
    /// they are read, and keyed afterwards: a first build reads each input once instead of twice. Known files
    /// whose stamp changed are hashed before keying instead, because they are usually unchanged (touched, or
    /// checked out again) and the layer is then reused without being written.
    ///
    /// `foreign` files are checked from the bytes the writer reads; a reused layer's are read for the check.
    func layer(
        _ entries: [LayerEntry], image: String, name: String, compression: LayerCompression,
        foreign: ForeignBinaries.Pending
    ) async throws -> (CachedLayer, reused: Bool) {
        let files = entries.compactMap { entry -> String? in
            if case .file(.path(let path)) = entry.kind { return path }
            return nil
        }
        // With a registry cache the key is needed before anything is written: it names the entry to fetch.
        guard remote != nil || !files.contains(where: { !digests.knows($0) }) else {
            options.logger.debug("layer \(image) ▸ \(name): inputs never hashed here, keyed while writing")
            let written = try await Blocking.run("kiln-layer") {
                try self.write(
                    entries, image: image, name: name, compression: compression, key: nil, foreign: foreign)
            }
            return (written, false)
        }
        let key = try cacheKey(entries, compression: compression)
        if let found = try await cache.find(key, roots: roots, remote: remote) {
            // A layer written with --allow-foreign-binaries has the same key: reuse is checked here.
            try foreign.checkFiles()
            return await reuse(found, key: key, image: image, name: name)
        }
        options.logger.debug("layer cache miss: \(image) ▸ \(name): key \(key) (spec or inputs changed)")
        let written = try await Blocking.run("kiln-layer") {
            try self.write(
                entries, image: image, name: name, compression: compression, key: key, foreign: foreign)
        }
        await remote?.publish(written, key: key)
        return (written, false)
    }

    /// A layer a cache had under `key` (plan or content key), reported and published to `--cache-to`.
    private func reuse(_ found: FoundLayer, key: Digest, image: String, name: String) async
        -> (CachedLayer, reused: Bool)
    {
        let digest = found.layer.descriptor.digest
        if let from = found.from {
            events(.layerFetched(image: image, layer: name, digest: digest, from: from))
        } else {
            options.logger.debug("layer cache hit: \(image) ▸ \(name): key \(key) → \(digest)")
            events(.layerReused(image: image, layer: name, digest: digest))
        }
        await remote?.publish(found.layer, key: key)
        return (found.layer, true)
    }

    /// Writes the layer into the store and remembers it under `key`, or (key nil) hashes every input file
    /// without a usable digest while writing and keys the layer from those digests.
    private func write(
        _ entries: [LayerEntry], image: String, name: String, compression: LayerCompression, key: Digest?,
        foreign: ForeignBinaries.Pending
    ) throws -> CachedLayer {
        var stamps: [String: FileDigests.Stamp] = [:]
        var hashing: Set<String> = []
        for entry in entries {
            guard case .file(.path(let path)) = entry.kind else { continue }
            let stamp = try FileDigests.stamp(path)
            stamps[path] = stamp
            if key == nil, digests.current(path, stamp: stamp) == nil { hashing.insert(path) }
        }
        let total = stamps.values.reduce(0) { $0 + $1.size }
        events(.layerStarted(image: image, layer: name, inputBytes: total))
        let started = Date()
        let staged = try layout.makeStagingFile()
        try? staged.handle.close()
        let events = self.events
        let result: LayerResult
        do {
            result = try LayerWriter.write(
                entries: entries, to: staged.path,
                options: LayerOptions(
                    mtime: options.sourceDateEpoch, compression: compression, threads: options.threads),
                hashing: hashing, inspecting: foreign.inspection,
                progress: { done in events(.layerProgress(image: image, layer: name, done: done, total: total)) })
            // An input rewritten while it was read would leave a layer that matches neither its old digest
            // nor its new one.
            for (path, stamp) in stamps where try FileDigests.stamp(path) != stamp {
                throw LayerError.fileChanged(path: path)
            }
        } catch {
            staged.discard()
            throw error
        }
        for (path, digest) in result.fileDigests {
            if let stamp = stamps[path] { digests.record(path, digest: digest, hashedAt: stamp) }
        }
        do {
            try roots.protect([result.descriptor.digest])
        } catch {
            staged.discard()
            throw error
        }
        try layout.adopt(fileAt: staged.path, as: result.descriptor.digest)
        let cached = CachedLayer(
            diffID: result.diffID, descriptor: result.descriptor, uncompressedSize: result.uncompressedSize)
        // Every input's digest is known by now (recorded above, or current before writing), with its stamp
        // checked after the write: keying needs no other look at the files.
        try cache.remember(cached, for: key ?? cacheKey(entries, compression: compression, stamps: stamps))
        events(
            .layerBuilt(
                image: image, layer: name, digest: result.descriptor.digest, size: result.descriptor.size,
                seconds: Date().timeIntervalSince(started)))
        return cached
    }

    /// sha256 over everything that determines the layer's bytes: each entry with its content's digest,
    /// the compression, the mtime and the encoding version.
    /// `stamps`, when given, are the inputs' stamps just taken: their digests are looked up under them instead of
    /// stat-ing every file again (a layer of 15.5k small files spent more time on that than on keying).
    func cacheKey(
        _ entries: [LayerEntry], compression: LayerCompression, stamps: [String: FileDigests.Stamp] = [:]
    ) throws -> Digest {
        // Hash changed input files on every core first (the stat cache answers for unchanged ones).
        let paths = entries.compactMap { entry -> String? in
            if case .file(.path(let path)) = entry.kind { return path }
            return nil
        }
        if paths.count > 1, stamps.isEmpty {
            let digests = self.digests
            Bounded.forEach(count: paths.count, limit: options.threads) { index in
                _ = try? digests.digest(ofFileAt: paths[index])
            }
        }
        // {"compression","encoding","entries":[{"gid","kind","mode","path","uid","value"}…],"mtime"}: the document
        // CanonicalJSON.encode wrote for these members before (the same bytes, so the same keys), written by hand
        // because JSONEncoder took about 0.1 CPU-s for a layer of 15.5k files, after the layer was written.
        var json = CanonicalJSONWriter(capacity: entries.count * 160)
        json.raw("{\"compression\":")
        json.string(compression.rawValue)
        json.raw(",\"encoding\":")
        json.integer(Encoding.version)
        json.raw(",\"entries\":[")
        for (index, entry) in entries.enumerated() {
            let (kind, value) = try entry.keyed { path in
                try stamps[path].flatMap { digests.current(path, stamp: $0) } ?? digests.digest(ofFileAt: path)
            }
            json.raw(index == 0 ? "{\"gid\":" : ",{\"gid\":")
            json.integer(entry.gid)
            json.raw(",\"kind\":")
            json.string(kind)
            json.raw(",\"mode\":")
            json.integer(entry.mode)
            json.raw(",\"path\":")
            json.string(entry.path)
            json.raw(",\"uid\":")
            json.integer(entry.uid)
            json.raw(",\"value\":")
            json.string(value)
            json.raw("}")
        }
        json.raw("],\"mtime\":")
        json.integer(options.sourceDateEpoch)
        json.raw("}")
        return Digest.sha256(json.bytes)
    }
}
