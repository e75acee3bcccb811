import Foundation
import KilnDebian
import KilnHTTP
import KilnLayer
import KilnOCI
import KilnRecipe
import KilnStore

/// The package sets a build uses, resolved and downloaded before the (synchronous) build starts.
/// Keyed like the lock: `recipe/layer`, plus `/ARCH` when a recipe has several platforms.
public struct PreparedPackages: Sendable {
    public var sets: [String: ResolvedPackageSet] = [:]
    /// The lock with fresh resolutions, when they changed it; written by `saveLock()` once the build succeeded,
    /// so a failed build leaves the lock as it was.
    var updatedLock: (lock: LockFile, path: String)?

    public init() {}

    public func saveLock() throws {
        if let updatedLock { try updatedLock.lock.save(updatedLock.path) }
    }
}

/// How a build uses the package sets the lock records.
public enum LockedPackages: Sendable {
    /// `--locked` and `kiln verify`: exactly the lock's packages; a set the lock does not cover is an error.
    case required
    /// A plain `kiln build`: the lock's packages while the set's request (suite, components, architecture,
    /// packages) is the one they were resolved for, so a rebuild asks no mirror and moves no version; a set
    /// that changed, is new, or whose locked versions the mirror no longer serves is resolved again.
    case preferred
    /// `kiln lock`: every set resolved again against the mirror (how a base picks up security updates).
    case refreshed
}

/// Glue between recipes and KilnDebian: lock handling before the build, layers and SBOMs during it.
public enum DebianPackages {
    static func key(_ recipe: Recipe, layer: String, platform: Platform) -> String {
        let base = "\(recipe.name)/\(layer)"
        return recipe.platforms.count > 1 ? base + "/" + architecture(platform) : base
    }

    static func architecture(_ platform: Platform) -> String {
        PackageSets.debianArchitecture(platform.architecture, variant: platform.variant)
    }

    static func request(_ spec: PackageSetSpec, recipe: Recipe, platform: Platform) -> PackageSetRequest {
        // A relative keyring is relative to the recipe file, like every path in a recipe.
        let keyring = spec.keyring.map { $0.hasPrefix("/") ? $0 : recipe.directory + "/" + $0 }
        return PackageSetRequest(
            suite: spec.suite, components: spec.components, packages: spec.packages, mirror: spec.mirror,
            keyring: keyring, architecture: architecture(platform))
    }

    /// What the lock records beside a resolved set: the set is resolved again when this changes.
    static func summary(_ request: PackageSetRequest) -> String {
        "\(request.suite) \(request.components.joined(separator: ",")) \(request.architecture): "
            + request.packages.joined(separator: " ")
    }

    /// Takes from the lock or resolves (see `LockedPackages`) and downloads every package set of `recipes`.
    /// Fresh resolutions are meant for the lock at `lockPath` (`saveLock()` after the build), so a review of the
    /// lock's diff shows exactly which packages moved.
    public static func prepare(
        _ recipes: [Recipe], lockPath: String, use: LockedPackages, httpOptions: HTTPOptions = HTTPOptions(),
        cache: DownloadCache? = nil, environment: [String: String] = ProcessInfo.processInfo.environment,
        progress: @Sendable (String) -> Void = { _ in }
    ) async throws -> PreparedPackages {
        var prepared = PreparedPackages()
        let work = recipes.flatMap { recipe in
            recipe.layers.flatMap { layer in
                layer.items.compactMap { item -> (Recipe, LayerSpec, PackageSetSpec)? in
                    guard case .packages(let spec) = item else { return nil }
                    return (recipe, layer, spec)
                }
            }
        }
        guard !work.isEmpty else { return prepared }
        var lock = try LockFile.load(lockPath)
        let original = lock
        // The one download cache: `--cache-dir` applies to .debs as to url inputs.
        let cache = cache ?? DownloadCache.default(environment: environment)
        let sources = AptSources.load()
        let transport = try HTTPTransport(options: httpOptions)
        do {
            for (recipe, layer, spec) in work {
                for platform in recipe.platforms {
                    let key = key(recipe, layer: layer.name, platform: platform)
                    let request = request(spec, recipe: recipe, platform: platform)
                    do {
                        let mirror = try PackageSets.mirror(for: request, environment: environment, sources: sources)
                        let keyring = PackageSets.keyring(for: request, mirror: mirror, sources: sources)
                        let pins = lock.packages[key] ?? []
                        let requested = summary(request)
                        func fetchLocked() async throws -> ResolvedPackageSet {
                            try await PackageSets.fetchLocked(
                                pins, request: request, mirror: mirror, keyring: keyring, cache: cache,
                                transport: transport)
                        }
                        func resolve() async throws -> ResolvedPackageSet {
                            progress("\(key): resolving \(spec.packages.joined(separator: " ")) in \(request.suite)")
                            let set = try await PackageSets.resolve(
                                request, mirror: mirror, keyring: keyring, cache: cache, transport: transport)
                            lock.packages[key] = set.packages
                            lock.packageRequests[key] = requested
                            return set
                        }
                        switch use {
                        case .required:
                            let missing = spec.packages.filter { name in !pins.contains { $0.name == name } }
                            if pins.isEmpty || !missing.isEmpty {
                                throw DebianError.lockIncomplete(
                                    key: key, missing: missing.isEmpty ? spec.packages : missing)
                            }
                            // Locks written before requests were recorded have none to compare.
                            if let locked = lock.packageRequests[key], locked != requested {
                                throw DebianError.lockStale(key: key, locked: locked, requested: requested)
                            }
                            progress("\(key): \(pins.count) locked packages")
                            prepared.sets[key] = try await fetchLocked()
                        case .preferred where !pins.isEmpty && lock.packageRequests[key] == requested:
                            do {
                                prepared.sets[key] = try await fetchLocked()
                                progress("\(key): \(pins.count) locked packages")
                            } catch DebianError.lockedUnavailable(let name, let version, let mirror) {
                                progress(
                                    "\(key): locked \(name) \(version) is gone from \(mirror); resolving the set again")
                                prepared.sets[key] = try await resolve()
                            }
                        case .preferred, .refreshed:
                            prepared.sets[key] = try await resolve()
                        }
                    } catch let error as DebianError {
                        throw BuildError.recipe("\(spec.location): error: \(error)")
                    }
                }
            }
        } catch {
            await transport.shutdown()
            throw error
        }
        await transport.shutdown()
        if lock != original { prepared.updatedLock = (lock, lockPath) }
        return prepared
    }
}

extension Builder {
    /// The layers one layer spec becomes: itself, or with `split: per-package` one layer per package (sorted,
    /// named `LAYER/PACKAGE`, so recipes listing the same packages share those layers) and then the spec's
    /// other items, if any, in a layer of their own.
    func layerSpecs(_ spec: LayerSpec, recipe: Recipe, platform: Platform) throws -> [(
        name: String, entries: [LayerEntry]
    )] {
        var others = spec
        others.items.removeAll { if case .packages = $0 { return true } else { return false } }
        var result: [(name: String, entries: [LayerEntry])] = []
        var combined: [LayerEntry] = []
        for case .packages(let set) in spec.items {
            let key = DebianPackages.key(recipe, layer: spec.name, platform: platform)
            guard let resolved = options.packages.sets[key] else {
                throw BuildError.recipe(
                    "\(set.location): error: package set \(key) was not resolved before the build (internal: run the pre-fetch)"
                )
            }
            let unpacked: [(pin: PinnedPackage, unpacked: UnpackedPackage)]
            do {
                unpacked = try resolved.unpack()
            } catch {
                throw BuildError.recipe("\(set.location): error: \(error)")
            }
            if set.split == "per-package" {
                for item in unpacked {
                    result.append(
                        (
                            "\(spec.name)/\(item.pin.name)",
                            try item.unpacked.entries + StatusDatabase.entries([item.unpacked])
                                + PostInstall.entries([item.unpacked])
                        ))
                }
            } else {
                let packages = unpacked.map(\.unpacked)
                combined +=
                    try packages.flatMap(\.entries) + StatusDatabase.entries(packages) + PostInstall.entries(packages)
            }
        }
        let rest = try entries(for: others, recipe: recipe)
        if !combined.isEmpty || !rest.isEmpty || result.isEmpty { result.append((spec.name, combined + rest)) }
        return result
    }

    /// An SPDX document of every Debian package in the image (its own sets and its base recipes'), stored as
    /// an OCI artifact manifest whose `subject` is the image manifest. It sits in index.json untagged, so
    /// `kiln images` lists only images while `kiln gc` keeps it and `kiln inspect` finds it by subject.
    func writeSBOM(_ recipe: Recipe, set: RecipeSet?, platform: Platform, subject: Descriptor, created: String) throws {
        var chain = [recipe]
        while case .recipe(let name) = chain.last!.base, let base = set?.recipe(named: name) { chain.append(base) }
        var packages: [SBOM.Package] = []
        for r in chain {
            for layer in r.layers where layer.items.contains(where: { if case .packages = $0 { true } else { false } })
            {
                guard let resolved = options.packages.sets[DebianPackages.key(r, layer: layer.name, platform: platform)]
                else { continue }
                for item in try resolved.unpack() {
                    let source =
                        item.unpacked.control["Source"].map { String($0.prefix { $0 != " " }) } ?? item.pin.name
                    packages.append(
                        SBOM.Package(
                            name: item.pin.name, version: item.pin.version, architecture: item.pin.architecture,
                            sha256: item.pin.sha256, source: source,
                            downloadLocation: resolved.mirror + "/" + item.pin.filename))
                }
            }
        }
        guard !packages.isEmpty else { return }
        let document = try SBOM.document(
            image: "\(recipe.name):\(options.version ?? recipe.version)", packages: packages, created: created)
        let empty = Data("{}".utf8)
        _ = try layout.writeBlob(empty)
        _ = try layout.writeBlob(document)
        var manifestSubject = subject
        manifestSubject.annotations = nil
        manifestSubject.platform = nil
        let manifest = Manifest(
            config: Descriptor(mediaType: MediaType.empty, bytes: empty),
            layers: [Descriptor(mediaType: SBOM.mediaType, bytes: document)],
            annotations: [AnnotationKey.created: created], artifactType: SBOM.mediaType, subject: manifestSubject)
        let bytes = try CanonicalJSON.encode(manifest)
        _ = try layout.writeBlob(bytes)
        var entry = Descriptor(mediaType: MediaType.imageManifest, bytes: bytes)
        entry.artifactType = SBOM.mediaType
        entry.annotations = [DebianPackages.sbomSubjectKey: subject.digest.description]
        try layout.updateIndex { index in
            index.manifests.removeAll { $0.annotations?[DebianPackages.sbomSubjectKey] == subject.digest.description }
            index.manifests.append(entry)
        }
    }
}

extension DebianPackages {
    /// Annotation on the SBOM's index.json entry naming the image manifest it describes.
    public static let sbomSubjectKey = "dev.kiln.sbom.subject"

    /// The SPDX packages (name, version) recorded for the image manifest `digest`, if any.
    public static func sbomPackages(layout: OCILayout, manifest digest: Digest) throws -> [(
        name: String, version: String
    )]? {
        guard
            let entry = try layout.index().manifests.first(where: {
                $0.annotations?[sbomSubjectKey] == digest.description
            })
        else { return nil }
        let manifest = try CanonicalJSON.decode(Manifest.self, from: layout.readBlob(entry.digest))
        guard let layer = manifest.layers.first, manifest.subject?.digest == digest else { return nil }
        struct Document: Decodable {
            struct Package: Decodable {
                var name: String
                var versionInfo: String
            }
            var packages: [Package]
        }
        let document = try JSONDecoder().decode(Document.self, from: layout.readBlob(layer.digest))
        return document.packages.map { ($0.name, $0.versionInfo) }
    }
}
