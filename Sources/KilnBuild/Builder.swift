import Foundation
import KilnDebian
import KilnLayer
import KilnOCI
import KilnRecipe
import KilnStore

public struct BuildOptions: Sendable {
    /// The one timestamp of every file, config and history entry (SOURCE_DATE_EPOCH, else 0).
    public var sourceDateEpoch: Int64
    /// Overrides every recipe's compression.
    public var compression: LayerCompression?
    public var threads: Int
    /// Read every input file again instead of trusting unchanged size/mtime/ctime/inode.
    public var rehash: Bool
    /// Replaces every recipe's version (CI release builds).
    public var version: String?
    /// Tags added to every image built (e.g. the git commit).
    public var extraTags: [String]
    /// Recorded as `org.opencontainers.image.revision`.
    public var revision: String?
    /// Where `url` inputs were fetched to (`RemoteInputs.fetch` fills it before the build).
    public var downloads: DownloadCache
    /// url → sha256 of every remote input, from the recipes, the lock or `kiln lock`.
    public var remoteInputs: [String: Digest]
    /// `--locked`: `NAME:TAG` → the digest the lock records; a build that would tag anything else fails
    /// before tagging.
    public var lockedImages: [String: Digest]?
    /// Use exactly what the lock records (Debian package sets); never re-resolve.
    public var locked = false
    /// Debian package sets resolved and downloaded before the build (`DebianPackages.prepare`).
    public var packages = PreparedPackages()

    public init(
        sourceDateEpoch: Int64 = Timestamp.sourceDateEpoch(), compression: LayerCompression? = nil,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount, rehash: Bool = false, version: String? = nil,
        extraTags: [String] = [], revision: String? = nil, downloads: DownloadCache = .default(),
        remoteInputs: [String: Digest] = [:], lockedImages: [String: Digest]? = nil
    ) {
        self.downloads = downloads
        self.remoteInputs = remoteInputs
        self.lockedImages = lockedImages
        self.sourceDateEpoch = sourceDateEpoch
        self.compression = compression
        self.threads = threads
        self.rehash = rehash
        self.version = version
        self.extraTags = extraTags
        self.revision = revision
    }
}

/// What a build reports while it works; the CLI turns these into progress lines.
public enum BuildEvent: Sendable {
    case layerReused(image: String, layer: String, digest: Digest)
    case layerStarted(image: String, layer: String, inputBytes: Int64)
    case layerProgress(image: String, layer: String, done: Int64, total: Int64)
    case layerBuilt(image: String, layer: String, digest: Digest, size: Int64, seconds: Double)
    case imageTagged(image: String, references: [String], digest: Digest)
}

/// The outcome for one image.
public struct BuiltImage: Codable, Sendable {
    public struct Layer: Codable, Sendable {
        public var name: String
        public var digest: Digest
        public var diffID: Digest
        public var size: Int64
        public var reused: Bool
    }

    public var name: String
    public var references: [String]
    public var digest: Digest
    public var mediaType: String
    public var platforms: [String]
    /// The layers this recipe added (not the base's), for the first platform.
    public var layers: [Layer]
    public var seconds: Double
}

/// Compiles recipes into images in the store: resolve inputs, reuse or write each layer, assemble, tag.
public final class Builder: Sendable {
    public let layout: OCILayout
    public let options: BuildOptions
    let events: @Sendable (BuildEvent) -> Void
    let cache: LayerCache
    let digests: FileDigests

    public init(
        layout: OCILayout, options: BuildOptions = BuildOptions(),
        events: @escaping @Sendable (BuildEvent) -> Void = { _ in }
    ) {
        self.layout = layout
        self.options = options
        self.events = events
        cache = LayerCache(layout: layout)
        digests = FileDigests(layout: layout, trustStat: !options.rehash)
    }

    /// Builds `recipes` (already in dependency order, as `RecipeSet` gives them). Recipes whose bases are built
    /// run in parallel, `jobs` at a time; the results come back in the given order whatever finishes first.
    public func build(_ recipes: [Recipe], all set: RecipeSet? = nil, jobs: Int = 2) throws -> [BuiltImage] {
        defer { digests.save() }
        try checkInputs(recipes)
        let state = BuildState()
        let names = Set(recipes.map(\.name))
        var remaining = recipes
        while !remaining.isEmpty {
            // Ready: every base that is part of this build is already built.
            let ready = remaining.filter { recipe in
                guard case .recipe(let base) = recipe.base, names.contains(base) else { return true }
                return state.images[base] != nil
            }
            guard !ready.isEmpty else { throw BuildError.recipe("internal error: recipe graph is not ordered") }
            remaining.removeAll { r in ready.contains { $0.name == r.name } }
            let bases = state.images
            var index = 0
            while index < ready.count {
                let wave = Array(ready[index..<min(ready.count, index + max(1, jobs))])
                index += wave.count
                DispatchQueue.concurrentPerform(iterations: wave.count) { i in
                    do {
                        let (result, images) = try build(wave[i], bases: bases, set: set)
                        state.finish(wave[i].name, result: result, images: images)
                    } catch {
                        state.fail(wave[i].name, error)
                    }
                }
                if let error = state.firstError { throw error }
            }
        }
        return recipes.compactMap { state.results[$0.name] }
    }

    /// What parallel recipe builds share, behind a lock.
    final class BuildState: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var images: [String: [Platform: StoredImage]] = [:]
        private(set) var results: [String: BuiltImage] = [:]
        private var errors: [(String, Error)] = []

        var firstError: Error? {
            lock.lock()
            defer { lock.unlock() }
            return errors.sorted { $0.0 < $1.0 }.first?.1
        }

        func finish(_ name: String, result: BuiltImage, images: [Platform: StoredImage]) {
            lock.lock()
            defer { lock.unlock() }
            self.images[name] = images
            results[name] = result
        }

        func fail(_ name: String, _ error: Error) {
            lock.lock()
            defer { lock.unlock() }
            errors.append((name, error))
        }
    }

    func checkInputs(_ recipes: [Recipe]) throws { try Self.checkLocalInputs(recipes) }

    /// Every local input must exist: reported together, at their recipe lines, before anything is fetched or
    /// built.
    public static func checkLocalInputs(_ recipes: [Recipe]) throws {
        var problems: [Diagnostic] = []
        for recipe in recipes {
            for layer in recipe.layers {
                for case .add(let add) in layer.items {
                    guard case .local(let pattern) = add.source else { continue }
                    if LocalSources.matches(pattern, in: recipe.directory).isEmpty {
                        problems.append(
                            Diagnostic(
                                add.location, "'\(pattern)' matches no file in \(recipe.directory)",
                                hint:
                                    "paths in a recipe are relative to the recipe file; check the name or add the file")
                        )
                    }
                }
            }
        }
        if !problems.isEmpty { throw RecipeError(problems) }
    }

    func build(_ recipe: Recipe, bases: [String: [Platform: StoredImage]], set: RecipeSet?) throws
        -> (BuiltImage, [Platform: StoredImage])
    {
        let started = Date()
        let created = Timestamp.rfc3339(epochSeconds: options.sourceDateEpoch)
        let compression =
            options.compression ?? recipe.compression.flatMap(LayerCompression.init(rawValue:)) ?? .gzip
        var manifests: [Descriptor] = []
        var images: [Platform: StoredImage] = [:]
        var reports: [BuiltImage.Layer] = []
        for platform in recipe.platforms {
            let base = try baseImage(recipe, platform: platform, built: bases)
            var layers: [(layer: CachedLayer, createdBy: String)] = []
            var specs = try recipe.layers.flatMap { try layerSpecs($0, recipe: recipe, platform: platform) }
            if let accounts = try accountsLayer(recipe, set: set) {
                specs.append((name: "accounts", entries: accounts))
            }
            for spec in specs {
                let (layer, reused) = try layer(
                    spec.entries, image: recipe.name, name: spec.name, compression: compression)
                layers.append((layer, "kiln: layer \(spec.name) of \(recipe.name)"))
                if platform == recipe.platforms[0] {
                    reports.append(
                        .init(
                            name: spec.name, digest: layer.descriptor.digest, diffID: layer.diffID,
                            size: layer.descriptor.size, reused: reused))
                }
            }
            let assembly = ImageAssembly(
                platform: platform, created: created, base: base, layers: layers, settings: recipe.settings,
                annotations: annotations(recipe, created: created), reset: recipe.reset)
            let descriptor = try assembly.write(to: layout)
            try writeSBOM(recipe, set: set, platform: platform, subject: descriptor, created: created)
            manifests.append(descriptor)
            images[platform] = try layout.images(for: descriptor)[0]
        }
        var target = manifests[0]
        if manifests.count > 1 {
            target = try ImageAssembly.writeIndex(
                manifests, annotations: annotations(recipe, created: created), to: layout)
        } else {
            target.platform = nil
        }
        let tags = tags(for: recipe)
        if let locked = options.lockedImages {
            let reference = "\(recipe.name):\(tags[0])"
            guard let expected = locked[reference], expected == target.digest else {
                throw BuildError.recipe(
                    "--locked: \(reference) builds to \(target.digest) but the lock records "
                        + (locked[reference].map(\.description) ?? "nothing for it")
                        + "; nothing was tagged. Review the change, then build without --locked to update the lock.")
            }
        }
        for tag in tags { try layout.tag(target, as: "\(recipe.name):\(tag)") }
        let references = tags.map { "\(recipe.name):\($0)" }
        events(.imageTagged(image: recipe.name, references: references, digest: target.digest))
        let result = BuiltImage(
            name: recipe.name, references: references, digest: target.digest, mediaType: target.mediaType,
            platforms: recipe.platforms.map(\.description), layers: reports, seconds: Date().timeIntervalSince(started))
        return (result, images)
    }

    func tags(for recipe: Recipe) -> [String] {
        var tags = [options.version ?? recipe.version]
        for tag in recipe.tags + options.extraTags where !tags.contains(tag) { tags.append(tag) }
        return tags
    }

    func annotations(_ recipe: Recipe, created: String) -> [String: String] {
        var result = recipe.annotations
        result[AnnotationKey.version] = options.version ?? recipe.version
        result[AnnotationKey.created] = created
        result[AnnotationKey.title] = recipe.name
        if let revision = options.revision { result[AnnotationKey.revision] = revision }
        if let source = recipe.settings.labels?[AnnotationKey.source] { result[AnnotationKey.source] = source }
        if case .image(let reference, let digest) = recipe.base {
            result[AnnotationKey.baseName] = reference
            result[AnnotationKey.baseDigest] = digest.description
        }
        return result
    }

    func baseImage(_ recipe: Recipe, platform: Platform, built: [String: [Platform: StoredImage]]) throws
        -> StoredImage?
    {
        switch recipe.base {
        case .scratch:
            return nil
        case .recipe(let name):
            guard let image = built[name]?[platform] else {
                throw BuildError.recipe(
                    "\(recipe.baseLocation ?? recipe.location): error: base '\(name)' has no \(platform) image: add \(platform) to its platforms"
                )
            }
            return image
        case .image(let reference, let digest):
            guard layout.hasBlob(digest) else {
                throw BuildError.recipe(
                    "\(recipe.baseLocation ?? recipe.location): error: base image \(reference)@\(digest) is not in the store: run `kiln build` with network, or `kiln pull \(reference)@\(digest)`"
                )
            }
            let descriptor = Descriptor(
                mediaType: try Self.mediaType(ofBlob: layout.readBlob(digest)), digest: digest,
                size: layout.blobSize(digest) ?? 0)
            guard
                let image = try layout.images(for: descriptor).first(where: { $0.config.platform == platform })
                    ?? layout.images(for: descriptor).first(where: {
                        $0.config.os == platform.os && $0.config.architecture == platform.architecture
                    })
            else {
                throw BuildError.recipe("base image \(reference) has no \(platform) image")
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

    // MARK: Layers

    /// Concrete entries of a layer spec.
    func entries(for spec: LayerSpec, recipe: Recipe) throws -> [LayerEntry] {
        var entries: [LayerEntry] = []
        for item in spec.items {
            switch item {
            case .add(let add):
                switch add.source {
                case .local(let pattern):
                    let paths = LocalSources.matches(pattern, in: recipe.directory)
                    entries += try LocalSources.entries(
                        matching: paths, isGlob: pattern.contains(where: { "*?[".contains($0) }), destination: add.to,
                        mode: add.ownership.mode, uid: add.ownership.uid, gid: add.ownership.gid)
                case .remote(let url, let pinned, let extract):
                    entries += try remoteEntries(
                        add, url: url, digest: pinned ?? options.remoteInputs[url], extract: extract)
                case .build(let name, _):
                    throw BuildError.recipe("\(add.location): `from: \(name)` needs the compile stage (not built yet)")
                }
            case .directory(let dir):
                entries.append(
                    LayerEntry(
                        path: dir.path, kind: .directory, mode: dir.ownership.mode ?? 0o755, uid: dir.ownership.uid,
                        gid: dir.ownership.gid))
            case .symlink(let link):
                entries.append(LayerEntry(path: link.path, kind: .symlink(target: link.target), mode: 0o777))
            case .file(let file):
                entries.append(
                    LayerEntry(
                        path: file.path, kind: .file(.bytes(Data(file.content.utf8))),
                        mode: file.ownership.mode ?? 0o644,
                        uid: file.ownership.uid, gid: file.ownership.gid))
            case .packages:
                break  // unpacked by layerSpecs (DebianPackages.swift)
            }
        }
        return entries
    }

    /// A downloaded file (placed at `to`, or `to/<file name>` when `to` ends with `/`), or members of a
    /// downloaded archive.
    func remoteEntries(_ add: AddSpec, url: String, digest: Digest?, extract: [String]?) throws -> [LayerEntry] {
        guard let digest, options.downloads.contains(digest) else {
            throw BuildError.recipe(
                "\(add.location): error: input \(url) has not been fetched: run `kiln build` with network or --sources")
        }
        let file = options.downloads.path(for: digest)
        // The cache names files by their verified content: no need to read them again to key the layer.
        digests.record(file, digest: digest)
        guard let extract else {
            let name = URL(string: url)?.lastPathComponent ?? "download"
            let path = add.to.hasSuffix("/") ? LocalSources.join(add.to, name) : add.to
            return [
                LayerEntry(
                    path: path, kind: .file(.path(file)), mode: add.ownership.mode ?? 0o644, uid: add.ownership.uid,
                    gid: add.ownership.gid)
            ]
        }
        let unpacked: ArchiveInputs.Unpacked
        do {
            unpacked = try ArchiveInputs.unpack(digest, cache: options.downloads)
        } catch let error as LayerError {
            throw BuildError.recipe("\(add.location): error: archive \(url): \(error)")
        }
        return try ArchiveInputs.entries(
            unpacked, patterns: extract, destination: add.to, ownership: add.ownership, archiveURL: url,
            location: add.location)
    }

    /// /etc/passwd, /etc/group and home directories for the recipe's users, including those its base recipes
    /// declared (the file is written whole, so it must list them too).
    func accountsLayer(_ recipe: Recipe, set: RecipeSet?) throws -> [LayerEntry]? {
        guard !recipe.users.isEmpty || !recipe.groups.isEmpty else { return nil }
        var chain = [recipe]
        while case .recipe(let name) = chain.last!.base, let base = set?.recipe(named: name) { chain.append(base) }
        var users: [Accounts.User] = []
        var groups: [Accounts.Group] = []
        for r in chain.reversed() {
            for u in r.users {
                users.removeAll { $0.name == u.name }
                users.append(.init(name: u.name, uid: u.uid, gid: u.gid, home: u.home, shell: u.shell))
            }
            for g in r.groups {
                groups.removeAll { $0.name == g.name }
                groups.append(.init(name: g.name, gid: g.gid, members: g.members))
            }
        }
        // Every user's primary group exists, named after the user unless declared.
        for u in users where !groups.contains(where: { $0.gid == u.gid }) && u.gid != 0 && u.gid != 65534 {
            groups.append(.init(name: u.name, gid: u.gid))
        }
        var entries = [
            LayerEntry(path: "/etc/passwd", kind: .file(.bytes(Data(Accounts.passwd(users).utf8))), mode: 0o644),
            LayerEntry(path: "/etc/group", kind: .file(.bytes(Data(Accounts.group(groups).utf8))), mode: 0o644),
        ]
        for u in recipe.users {
            entries.append(LayerEntry(path: u.home, kind: .directory, mode: 0o755, uid: u.uid, gid: u.gid))
        }
        return entries
    }

    /// Reuses the layer if its key is cached, else writes it into the store.
    ///
    /// A layer with input files this store has never hashed is written straight away, hashing those files as
    /// they are read, and keyed afterwards: a first build reads each input once instead of twice. Known files
    /// whose stamp changed are hashed before keying instead, because they are usually unchanged (touched, or
    /// checked out again) and the layer is then reused without being written.
    func layer(_ entries: [LayerEntry], image: String, name: String, compression: LayerCompression) throws
        -> (CachedLayer, reused: Bool)
    {
        let files = entries.compactMap { entry -> String? in
            if case .file(.path(let path)) = entry.kind { return path }
            return nil
        }
        guard files.contains(where: { !digests.knows($0) }) else {
            let key = try cacheKey(entries, compression: compression)
            if let hit = cache.lookup(key) {
                events(.layerReused(image: image, layer: name, digest: hit.descriptor.digest))
                return (hit, true)
            }
            return (try write(entries, image: image, name: name, compression: compression, key: key), false)
        }
        return (try write(entries, image: image, name: name, compression: compression, key: nil), false)
    }

    /// Writes the layer into the store and remembers it under `key`, or (key nil) hashes every input file
    /// without a usable digest while writing and keys the layer from those digests.
    private func write(
        _ entries: [LayerEntry], image: String, name: String, compression: LayerCompression, key: Digest?
    ) throws -> CachedLayer {
        var stamps: [String: FileDigests.Stamp] = [:]
        var hashing: Set<String> = []
        for entry in entries {
            guard case .file(.path(let path)) = entry.kind else { continue }
            stamps[path] = try FileDigests.stamp(path)
            if key == nil, try digests.current(path) == nil { hashing.insert(path) }
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
                hashing: hashing,
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
        try layout.adopt(fileAt: staged.path, as: result.descriptor.digest)
        let cached = CachedLayer(
            diffID: result.diffID, descriptor: result.descriptor, uncompressedSize: result.uncompressedSize)
        try cache.remember(cached, for: key ?? cacheKey(entries, compression: compression))
        events(
            .layerBuilt(
                image: image, layer: name, digest: result.descriptor.digest, size: result.descriptor.size,
                seconds: Date().timeIntervalSince(started)))
        return cached
    }

    /// sha256 over everything that determines the layer's bytes: each entry with its content's digest,
    /// the compression, the mtime and the encoding version.
    func cacheKey(_ entries: [LayerEntry], compression: LayerCompression) throws -> Digest {
        struct KeyEntry: Encodable {
            var path: String
            var kind: String
            var value: String
            var mode: UInt32
            var uid: Int
            var gid: Int
        }
        struct Key: Encodable {
            var encoding = Encoding.version
            var compression: String
            var mtime: Int64
            var entries: [KeyEntry]
        }
        // Hash changed input files on every core first (the stat cache answers for unchanged ones).
        let paths = entries.compactMap { entry -> String? in
            if case .file(.path(let path)) = entry.kind { return path }
            return nil
        }
        if paths.count > 1 {
            let digests = self.digests
            let lanes = max(1, min(options.threads, paths.count))
            DispatchQueue.concurrentPerform(iterations: lanes) { lane in
                for index in stride(from: lane, to: paths.count, by: lanes) {
                    _ = try? digests.digest(ofFileAt: paths[index])
                }
            }
        }
        let keyed = try entries.map { entry -> KeyEntry in
            let (kind, value): (String, String)
            switch entry.kind {
            case .directory: (kind, value) = ("dir", "")
            case .symlink(let target): (kind, value) = ("symlink", target)
            case .hardlink(let target): (kind, value) = ("hardlink", target)
            case .file(.bytes(let data)): (kind, value) = ("file", Digest.sha256(data).description)
            case .file(.path(let path)): (kind, value) = ("file", try digests.digest(ofFileAt: path).description)
            }
            return KeyEntry(
                path: entry.path, kind: kind, value: value, mode: entry.mode, uid: entry.uid, gid: entry.gid)
        }
        return Digest.sha256(
            try CanonicalJSON.encode(
                Key(compression: compression.rawValue, mtime: options.sourceDateEpoch, entries: keyed)))
    }
}
