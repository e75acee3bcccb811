import Foundation
import KilnDebian
import KilnHTTP
import KilnLayer
import KilnOCI
import KilnRecipe
import KilnStore

extension Pipeline {
    /// Builds every image of `prepared.plan` into `layout` (its build steps' `outputs` as `compile` returned
    /// them): each planned layer reused or written, then
    /// configs, manifests, indexes and SBOMs, and the tags last, all or none: only once every image is built
    /// (and, with `--locked`, every one matches the lock) and `beforeTagging` returned is any image tagged.
    /// Results come in plan order.
    /// With `tag: false` (`kiln lock`) the images are built and kept by nothing: `kiln gc` may remove them.
    public static func build(
        _ prepared: PreparedInputs, outputs: BuildOutputs = [:], into layout: OCILayout, tag: Bool = true,
        events: @escaping @Sendable (BuildEvent) -> Void = { _ in },
        beforeTagging: @Sendable ([BuiltImage]) throws -> Void = { _ in }
    ) async throws -> [BuiltImage] {
        try await Builder(layout: layout, prepared: prepared, outputs: outputs, events: events).build(
            tag: tag, beforeTagging: beforeTagging)
    }
}

/// The build stage: turns prepared inputs into images in the store.
final class Builder: Sendable {
    let layout: OCILayout
    let prepared: PreparedInputs
    let outputs: BuildOutputs
    let events: @Sendable (BuildEvent) -> Void
    let cache: LayerCache
    let digests: FileDigests
    /// What this build relies on before it tags, kept from `kiln gc` until it finishes.
    let roots: BuildRoots
    /// `--cache-from`/`--cache-to` (nil without them), and the transport it speaks through.
    let remote: RegistryLayerCache?
    let transport: HTTPTransport?
    var options: BuildOptions { prepared.plan.options }

    init(
        layout: OCILayout, prepared: PreparedInputs, outputs: BuildOutputs = [:],
        events: @escaping @Sendable (BuildEvent) -> Void = { _ in }
    ) throws {
        self.layout = layout
        self.prepared = prepared
        self.outputs = outputs
        self.events = events
        cache = LayerCache(layout: layout, logger: prepared.plan.options.logger)
        digests = prepared.fileDigests ?? FileDigests(layout: layout, trustStat: !prepared.plan.options.rehash)
        roots = try prepared.layerRoots ?? BuildRoots(layout: layout)
        let options = prepared.plan.options
        if !options.cacheFrom.isEmpty || options.cacheTo != nil {
            let transport = try HTTPTransport(options: options.http)
            self.transport = transport
            remote = try RegistryLayerCache(options: options, layout: layout, transport: transport)
        } else {
            transport = nil
            remote = nil
        }
    }

    /// The recipe graph in a task group: an image starts once the bases it builds on are built, at most
    /// `jobs` at a time (each also compresses on several threads). The first failure cancels the rest. Tags
    /// come last, for every image at once: the images stay kept from `kiln gc` by the build's roots until then.
    func build(tag: Bool = true, beforeTagging: ([BuiltImage]) throws -> Void = { _ in }) async throws
        -> [BuiltImage]
    {
        do {
            let built = try await buildAll(tag: tag, beforeTagging: beforeTagging)
            await transport?.shutdown()
            return built
        } catch {
            await transport?.shutdown()
            throw error
        }
    }

    private func buildAll(tag: Bool, beforeTagging: ([BuiltImage]) throws -> Void) async throws -> [BuiltImage] {
        defer {
            digests.save()
            roots.finish()
        }
        let plan = prepared.plan
        let building = Set(plan.images.map(\.name))
        var pending = plan.images
        var stored: [String: [Platform: StoredImage]] = [:]
        var results: [String: BuiltImage] = [:]
        var targets: [String: Descriptor] = [:]
        try await withThrowingTaskGroup(of: (BuiltImage, [Platform: StoredImage], Descriptor).self) { group in
            var running = 0
            while !pending.isEmpty || running > 0 {
                // Ready: every base that is part of this build is already built.
                while running < max(1, options.jobs),
                    let next = pending.firstIndex(where: { image in
                        guard case .recipe(let base, _) = image.job.base, building.contains(base) else { return true }
                        return stored[base] != nil
                    })
                {
                    let image = pending.remove(at: next)
                    let bases = stored
                    running += 1
                    group.addTask { try await self.build(image, bases: bases) }
                }
                guard running > 0 else { throw BuildError.internalError("recipe graph is not ordered") }
                guard let (result, images, target) = try await group.next() else { break }
                running -= 1
                stored[result.name] = images
                results[result.name] = result
                targets[result.name] = target
            }
        }
        let built = plan.images.compactMap { results[$0.name] }
        if options.lockMode == .locked { try checkLocked(built) }
        try beforeTagging(built)
        guard tag else { return built }
        // One replacement of index.json: every tag of every image, or none.
        var tags: [(descriptor: Descriptor, reference: String)] = []
        for image in plan.images {
            guard var target = targets[image.name] else { continue }
            target.annotations = tagAnnotations(image)
            tags += image.references.map { (target, $0) }
        }
        try layout.tag(tags)
        for image in plan.images {
            guard let target = targets[image.name] else { continue }
            events(.imageTagged(image: image.name, references: image.references, digest: target.digest))
        }
        return built
    }

    /// `--locked`: every image built is compared with the lock before any is tagged, and every difference is
    /// reported at once.
    func checkLocked(_ built: [BuiltImage]) throws {
        let differences = prepared.plan.images.compactMap { image -> String? in
            guard let result = built.first(where: { $0.name == image.name }) else { return nil }
            guard let expected = image.lockedDigest else {
                return "  \(image.references[0]) builds to \(result.digest) but the lock records nothing for it"
            }
            return expected == result.digest
                ? nil : "  \(image.references[0]) builds to \(result.digest) but the lock records \(expected)"
        }
        guard differences.isEmpty else {
            throw BuildError.lockedImageDiffers(
                "--locked: \(differences.count) of \(built.count) image\(built.count == 1 ? "" : "s") differ from \(prepared.plan.lockPath):\n"
                    + differences.joined(separator: "\n")
                    + "\nnothing was tagged. Review the change, then build without --locked to update the lock.")
        }
    }

    /// One image: per platform its planned layers, assembled over the base; an index for several platforms.
    /// Returns what to tag (tags come once every image is built).
    func build(_ image: PlannedImage, bases: [String: [Platform: StoredImage]]) async throws
        -> (BuiltImage, [Platform: StoredImage], Descriptor)
    {
        let started = Date()
        let created = Timestamp.rfc3339(epochSeconds: options.sourceDateEpoch)
        let job = image.job
        let compression = options.compression ?? job.compression ?? .gzip
        var annotations = job.annotations
        annotations[AnnotationKey.created] = created
        var manifests: [Descriptor] = []
        var images: [Platform: StoredImage] = [:]
        var reports: [BuiltImage.Layer] = []
        var (written, reusedCount) = (0, 0)
        for (platform, planned) in zip(job.platforms, image.platforms) {
            let base = try baseImage(job.base, platform: platform, built: bases)
            if let base {
                try roots.protect(
                    [base.manifestDescriptor.digest, base.manifest.config.digest] + base.manifest.layers.map(\.digest))
            }
            var layers: [(layer: CachedLayer, createdBy: String)] = []
            var unpacked: Unpacked = [:]
            for spec in planned.layers {
                let (layer, reused) = try await layer(
                    spec, platform: platform, unpacked: &unpacked, image: image.name, compression: compression)
                layers.append((layer, "kiln: layer \(spec.name) of \(image.name)"))
                if reused { reusedCount += 1 } else { written += 1 }
                if platform == job.platforms[0] {
                    reports.append(
                        .init(
                            name: spec.name, digest: layer.descriptor.digest, diffID: layer.diffID,
                            size: layer.descriptor.size, reused: reused))
                }
            }
            let assembly = ImageAssembly(
                platform: platform, created: created, base: base, layers: layers, settings: job.settings,
                annotations: annotations, reset: job.reset)
            let descriptor = try assembly.write(to: layout, protect: roots.protect)
            try writeSBOM(image, planned, subject: descriptor, created: created)
            try writeProvenance(image, planned, subject: descriptor, base: base)
            manifests.append(descriptor)
            images[platform] = try layout.images(for: descriptor)[0]
        }
        var target = manifests[0]
        if manifests.count > 1 {
            target = try ImageAssembly.writeIndex(
                manifests, annotations: annotations, to: layout, protect: roots.protect)
        } else {
            target.platform = nil
        }
        let result = BuiltImage(
            name: image.name, references: image.references, digest: target.digest, mediaType: target.mediaType,
            platforms: job.platforms.map(\.description), layers: reports, layersWritten: written,
            layersReused: reusedCount, seconds: Date().timeIntervalSince(started))
        return (result, images, target)
    }

    /// What `index.json` says of a tag beside its name: the version built and the source revision. They live
    /// there, outside every digest.
    func tagAnnotations(_ image: PlannedImage) -> [String: String] {
        var result = [AnnotationKey.version: image.version]
        if let revision = options.revision { result[AnnotationKey.revision] = revision }
        return result
    }

    func baseImage(_ base: ImageJob.Base, platform: Platform, built: [String: [Platform: StoredImage]]) throws
        -> StoredImage?
    {
        switch base {
        case .scratch:
            return nil
        case .recipe(let name, let location):
            guard let image = built[name]?[platform] else {
                throw BuildError.recipe(
                    location,
                    "base '\(name)' has no \(platform) image: add \(platform) to its platforms"
                )
            }
            return image
        case .image(let reference, let digest, let location):
            guard let descriptor = try layout.pinnedImage(digest) else {
                throw BuildError.recipe(
                    location,
                    "base image \(reference)@\(digest) is not in the store: run `kiln build` with network, or `kiln pull \(reference)@\(digest)`"
                )
            }
            guard
                let image = try layout.images(for: descriptor).first(where: { $0.config.platform == platform })
                    ?? layout.images(for: descriptor).first(where: {
                        $0.config.os == platform.os && $0.config.architecture == platform.architecture
                    })
            else {
                throw BuildError.recipe(
                    location, "base image \(reference) has no \(platform) image")
            }
            // Reused as they are: a layer truncated or replaced in the store since the pull is not built upon.
            for layer in image.manifest.layers where layout.blobSize(layer.digest) != layer.size {
                throw StoreError.io(
                    path: layout.blobPath(layer.digest), operation: "reuse a layer of base image \(reference) from",
                    detail:
                        "it is \(layout.blobSize(layer.digest).map(String.init) ?? "missing"), the manifest says \(layer.size) bytes: delete it and run `kiln pull \(reference)@\(digest)`"
                )
            }
            return image
        }
    }

    static func mediaType(ofBlob data: Data) throws -> String {
        struct Probe: Decodable {
            var mediaType: String?
            var manifests: [Descriptor]?
        }
        let probe = try JSONDecoder().decode(Probe.self, from: data)
        return probe.mediaType ?? (probe.manifests != nil ? MediaType.imageIndex : MediaType.imageManifest)
    }

}
