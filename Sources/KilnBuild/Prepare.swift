import Foundation
import KilnDebian
import KilnHTTP
import KilnOCI
import KilnProcess
import KilnRecipe
import KilnRegistry
import KilnStore

/// Everything a build reads besides the recipe directory, on this machine and verified: url inputs in the
/// download cache, digest-pinned base images in the store, Debian package sets downloaded, build steps'
/// sources fetched and checked. `compile` and `build` read these values; neither fetches anything.
public struct PreparedInputs: Sendable {
    /// The plan, with every split package set planned into the layers of the packages it resolved to.
    public var plan: BuildPlan
    /// url → sha256 of every remote input; each is in `plan.options.inputs.cache` under that digest.
    public var inputs: [String: Digest]
    /// Debian package sets by their lock key (`recipe/layer[/arch]`), every .deb in the download cache.
    public var packages: [String: ResolvedPackageSet]
    /// The sets resolved afresh (not taken from the lock), with the request they answer: `record` writes them.
    public var resolved: [String: (packages: [PinnedPackage], request: String)]
    /// Every build step's sources (by `recipe/build`), in the order the step lists them.
    var sources: [String: [ResolvedSource]] = [:]
    /// The build steps (by `recipe/build`) whose outputs, by the plan's key, are already in the store or a
    /// `--cache-from` registry: neither their environment nor their sources were fetched.
    var cachedBuilds: Set<String> = []
    /// The layers found under their plan key before anything was fetched (see `Pipeline.planKeyedLayers`).
    public var planKeyedLayers: [String: FoundLayer] = [:]
    /// Keeps those layers' blobs from `kiln gc` until the build that uses them finishes.
    var layerRoots: BuildRoots?
    /// The store's file digests as keying local files left them: the build goes on with the same table (saved
    /// when it finishes), so no file is hashed twice.
    var fileDigests: FileDigests?
}

extension Pipeline {
    /// Fetches what `plan` needs (base images only when given the store they go into), through one HTTP
    /// transport (none at all with `--offline`, where anything not on this machine is an error), then the
    /// build steps' sources. Local files are checked first: a missing file stops before any download.
    /// With `reuseOutputs`, a build step whose outputs the store or a `--cache-from` registry holds under the
    /// plan's key needs neither its environment nor its sources: they are not fetched.
    public static func prepare(
        _ plan: BuildPlan, store: String?, reuseOutputs: Bool = true,
        events: @escaping @Sendable (BuildEvent) -> Void = { _ in }
    ) async throws -> PreparedInputs {
        var prepared = try await fetchInputs(plan, store: store, reuseOutputs: reuseOutputs, events: events)
        try await prepareSources(&prepared)
        return prepared
    }

    /// The second half of prepare, after `kiln lock` recorded its pins: local files (which `kiln lock` does not
    /// check before pinning) and the build steps' sources.
    static func prepareSources(_ prepared: inout PreparedInputs) async throws {
        if prepared.plan.options.lockMode == .refresh {
            try await checkLocalInputs(prepared.plan, options: prepared.plan.options)
        }
        let planned = prepared
        prepared.sources = try await Blocking.run("kiln-git") { try sources(planned) }
    }

    /// Every build step's sources, found (a `--sources` archive, the source cache) or fetched with git, and
    /// checked against their pins, by `recipe/build`.
    static func sources(_ prepared: PreparedInputs) throws -> [String: [ResolvedSource]] {
        var result: [String: [ResolvedSource]] = [:]
        for build in prepared.plan.builds where !prepared.cachedBuilds.contains(build.id) {
            result[build.id] = try (build.spec?.sources ?? []).map {
                try BuildSources.resolve($0, directory: build.directory, options: prepared.plan.options.inputs)
            }
        }
        return result
    }

    /// The url inputs, base images and Debian package sets of `plan`: what `kiln lock` pins (before it fetches
    /// sources, so the pins hold even where a step's sources are missing).
    static func fetchInputs(
        _ plan: BuildPlan, store: String?, reuseOutputs: Bool, events: @escaping @Sendable (BuildEvent) -> Void
    ) async throws -> PreparedInputs {
        let options = plan.options
        try await check(plan)
        let transport = options.offline ? nil : try HTTPTransport(options: options.http)
        do {
            // Layers the cache has under their plan key need none of their inputs: looked up first, so what
            // only they need is never downloaded. Local files are folded into the keys first: with a registry
            // cache every one is hashed (the key is needed before anything is written), else only those this
            // store knows. Without a registry cache a store that does not exist yet has nothing to look up.
            var plan = plan
            var found: [String: FoundLayer] = [:]
            var roots: BuildRoots?
            var fileDigests: FileDigests?
            let registry = !options.cacheFrom.isEmpty || options.cacheTo != nil
            if let store, reuseOutputs, options.lockMode != .refresh,
                registry || FileManager.default.fileExists(atPath: store + "/index.json")
            {
                let layout = try OCILayout(root: store)
                let digests = FileDigests(layout: layout, trustStat: !options.rehash)
                plan.keyLocalFiles(digests, hashUnknown: registry)
                fileDigests = digests
                let kept = try BuildRoots(layout: layout)
                found = try await planKeyedLayers(plan, layout: layout, roots: kept, transport: transport)
                roots = kept
            }
            let cached = reuseOutputs ? try await cachedBuilds(plan, store: store, transport: transport) : []
            let needed = plan.stillNeeded(found: Set(found.keys), cachedBuilds: cached)
            var inputOptions = options.inputs
            inputOptions.trustUnpinned = options.lockMode == .refresh
            var inputs: [String: Digest] = [:]
            do {
                inputs = try await RemoteInputs.fetch(
                    plan.remoteInputs.filter { needed.urls.contains($0.url) }, options: inputOptions,
                    transport: transport, events: { events(.input($0)) })
            } catch let error as RecipeError {
                throw BuildError.inputsMissing(error)
            }
            // Inputs only cached layers use are not fetched; their pins still name them (SBOM, provenance, lock).
            for input in plan.remoteInputs where inputs[input.url] == nil { inputs[input.url] = input.sha256 }
            // Without a registry cache the store is opened (created) only once the inputs are at hand: a build
            // that cannot start leaves no store behind.
            if let store {
                try await BaseImages.fetchMissing(
                    plan.registryBases, into: OCILayout(root: store), options: options.registry, transport: transport,
                    events: { events(.transfer($0)) })
            }
            let (packages, resolved) = try await DebianPackages.prepare(
                plan, only: needed.sets, transport: transport, progress: { events(.status($0)) },
                step: { events(.step($0)) })
            await transport?.shutdown()
            var prepared = PreparedInputs(
                plan: plan.settled(with: packages.mapValues(\.packages)), inputs: inputs, packages: packages,
                resolved: resolved)
            prepared.cachedBuilds = cached
            prepared.planKeyedLayers = found
            prepared.layerRoots = roots
            prepared.fileDigests = fileDigests
            return prepared
        } catch {
            await transport?.shutdown()
            throw error
        }
    }

    /// The build steps whose outputs are at hand under the key the plan computed (the environment from the
    /// lock, every source pinned by content): in the store, or in a `--cache-from` registry.
    static func cachedBuilds(_ plan: BuildPlan, store: String?, transport: HTTPTransport?) async throws -> Set<String> {
        guard let store else { return [] }
        let remote = try transport.flatMap { try RegistryBuildOutputs(options: plan.options, transport: $0) }
        var cached: Set<String> = []
        for build in plan.builds {
            guard let key = build.key else { continue }
            if FileManager.default.fileExists(atPath: store + "/builds/" + key + "/outputs.json") {
                cached.insert(build.id)
            } else if let remote, await remote.has(key) {
                cached.insert(build.id)
            }
        }
        return cached
    }

    /// Every check that needs no network, as `prepare` runs it first and `kiln build --dry-run` runs it alone:
    /// registry base references (address, port, name), local inputs, and with `--locked` the lock's pins.
    public static func check(_ plan: BuildPlan) async throws {
        let options = plan.options
        try checkBaseReferences(plan.registryBases)
        if options.lockMode != .refresh { try await checkLocalInputs(plan, options: options) }
        if options.lockMode == .locked { try checkLockedInputs(plan.remoteInputs, plan: plan) }
    }

    /// A registry base (`base: REGISTRY/NAME:TAG@sha256:…`) must be a reference Kiln could fetch: an error at
    /// the recipe's `base:` line otherwise (a port out of range, an upper-case repository, …).
    static func checkBaseReferences(_ bases: [RegistryBase]) throws {
        for base in bases {
            do {
                _ = try Reference(parsing: "\(base.reference)@\(base.digest)")
            } catch {
                throw BuildError.recipe(base.location, "\(error)")
            }
        }
    }

    /// Every local input must exist: reported together, at their recipe lines, before anything is fetched or
    /// built. The report also lists the remote inputs that are not at hand yet (looked up offline), so one run
    /// shows everything to provide.
    static func checkLocalInputs(_ plan: BuildPlan, options: BuildOptions) async throws {
        var problems: [Diagnostic] = []
        for files in plan.localFiles {
            if files.paths.isEmpty {
                problems.append(
                    Diagnostic(
                        files.location, "'\(files.pattern)' matches no file in \(files.directory)",
                        hint: "paths in a recipe are relative to the recipe file; check the name or add the file"))
            }
            for path in files.paths {
                guard let link = LocalSources.escape(path, in: files.directory) else { continue }
                problems.append(LocalSources.escapeDiagnostic(files.location, path: path, link: link))
            }
        }
        guard !problems.isEmpty else { return }
        var offline = options.inputs
        offline.offline = true
        do {
            _ = try await RemoteInputs.fetch(plan.remoteInputs, options: offline, transport: nil)
        } catch let missing as RecipeError {
            problems += missing.diagnostics
        }
        throw RecipeError(problems)
    }

    /// `--locked`: every input must be pinned by the lock to the digest the recipes give.
    static func checkLockedInputs(_ remote: [RemoteInput], plan: BuildPlan) throws {
        var problems: [String] = []
        for input in remote where plan.lock.inputs[input.url] == nil || plan.lock.inputs[input.url] != input.sha256 {
            problems.append(
                "\(input.location): input \(input.url): lock has \(plan.lock.inputs[input.url].map(\.description) ?? "nothing"), recipe gives \(input.sha256.map(\.description) ?? "no sha256")"
            )
        }
        if !problems.isEmpty { throw BuildError.lockMismatch(problems, lockPath: plan.lockPath) }
    }
}
