import Foundation
import KilnDebian
import KilnLayer
import KilnOCI
import KilnRecipe
import Logging

/// The build as named stages over values (README "Architecture"):
///
///     plan(recipes, lock, options) → BuildPlan        the build fully resolved; the only stage reading recipes
///     prepare(plan) → PreparedInputs                   url inputs, base images, Debian sets, sources, verified
///     compile(prepared) → BuildOutputs                 build steps run, or their outputs taken from a cache
///     build(prepared, outputs) → [BuiltImage]          layers (reused or written), configs, manifests, SBOMs, tags
///     record(prepared, results)                        the lock, written only after a successful build
///
/// Each stage is a function of the values the stages before it return; `Pipeline.run` (Run.swift) is the one
/// composition `kiln build`, `kiln lock` and `kiln verify` call.
public enum Pipeline {}

extension Pipeline {
    /// Plans `names` (and the recipes they build on), or every recipe of `set`, against the lock at `lockPath`
    /// (a missing lock is an empty one). Reads nothing but the lock: no input is fetched or hashed.
    public static func plan(_ set: RecipeSet, only names: [String] = [], lockPath: String, options: BuildOptions)
        throws -> BuildPlan
    {
        var recipes = names.isEmpty ? set.recipes : set.closure(of: names)
        var all = set.recipes
        if let wanted = options.platforms {
            recipes = try narrow(recipes, to: wanted, lockMode: options.lockMode)
            all = all.map { $0.narrowed(to: wanted) ?? $0 }
        }
        return try plan(recipes, all: all, lock: LockFile.load(lockPath), lockPath: lockPath, options: options)
    }

    /// `--platform`: every recipe built for just the wanted platforms it has; one that has none of them is an
    /// error naming its own. `--locked` compares whole images (all platforms) with the lock, so it cannot
    /// check a narrowed build.
    static func narrow(_ recipes: [Recipe], to wanted: [Platform], lockMode: LockMode) throws -> [Recipe] {
        let names = wanted.map(\.description).joined(separator: ", ")
        return try recipes.map { recipe in
            guard let narrowed = recipe.narrowed(to: wanted) else {
                throw BuildError.platformNotBuilt(
                    at: recipe.location,
                    "\(recipe.name) is built for "
                        + recipe.platforms.map(\.description).joined(separator: ", ")
                        + ", not for --platform \(names)\n  hint: name only images that list the platform in `platforms:`, or add it there"
                )
            }
            if lockMode == .locked, narrowed.platforms != recipe.platforms {
                throw BuildError.platformNotBuilt(
                    at: nil,
                    "--locked checks \(recipe.name) as the lock records it, for all its platforms "
                        + "(\(recipe.platforms.map(\.description).joined(separator: ", "))); "
                        + "run it without --platform")
            }
            return narrowed
        }
    }

    /// `recipes` in dependency order (as `RecipeSet` gives them); `all` is every recipe base chains may reach.
    /// This is the one place outside KilnRecipe that reads recipes: every later stage reads the plan.
    public static func plan(
        _ recipes: [Recipe], all: [Recipe]? = nil, lock: LockFile, lockPath: String, options: BuildOptions
    ) throws -> BuildPlan {
        let remote = try RemoteInputs.collect(recipes, lock: lock, recipesWin: options.lockMode == .refresh)
        let inputs = remote.map { input in
            PlannedInput(
                url: input.url, sha256: input.sha256,
                pinnedBy: input.pinnedInRecipe ? .recipe : (input.sha256 == nil ? .nothing : .lock),
                location: input.location.description)
        }
        var plan = BuildPlan(
            images: [], inputs: inputs,
            packageSets: packageSets(recipes, lock: lock, mode: options.lockMode, logger: options.logger),
            lockPath: lockPath, options: options)
        plan.lock = lock
        plan.remoteInputs = remote
        let all = all ?? recipes
        var pins: [String: [PinnedPackage]] = [:]
        for set in plan.packageSets where set.source == .lock { pins[set.key] = set.packages }
        plan.images = recipes.map { image($0, chain: chain(of: $0, in: all, or: recipes), plan: plan, pins: pins) }
        plan.builds = recipes.flatMap { builds($0, plan: plan) }
        for recipe in recipes {
            if case .image(let reference, let digest) = recipe.base,
                !plan.registryBases.contains(where: { $0.digest == digest })
            {
                plan.registryBases.append(
                    RegistryBase(reference: reference, digest: digest, location: recipe.baseLocation ?? recipe.location)
                )
            }
            for layer in recipe.selectedLayers {
                for case .add(let add) in layer.items {
                    guard case .local(let pattern) = add.source else { continue }
                    plan.localFiles.append(
                        LocalFiles(
                            pattern: pattern, directory: recipe.directory,
                            paths: LocalSources.matches(pattern, in: recipe.directory), location: add.location))
                }
            }
        }
        plan.keyLayers()
        return plan
    }

    /// The recipe and its base recipes, nearest first (`all` first: base chains may reach outside the images
    /// built).
    static func chain(of recipe: Recipe, in all: [Recipe], or recipes: [Recipe]) -> [Recipe] {
        var chain = [recipe]
        while case .recipe(let name) = chain.last!.base,
            let base = all.first(where: { $0.name == name }) ?? recipes.first(where: { $0.name == name }),
            !chain.contains(where: { $0.name == base.name })
        {
            chain.append(base)
        }
        return chain
    }

    /// A recipe's build steps as compile jobs; the cache key is filled in when the environment comes from the
    /// lock and every source is pinned by its content (a `dir:` source is hashed by prepare).
    static func builds(_ recipe: Recipe, plan: BuildPlan) -> [PlannedBuild] {
        guard let platform = recipe.platforms.first else { return [] }
        return recipe.builds.map { build in
            let environment = DebianPackages.key(recipe, layer: "build:" + build.name, platform: platform)
            var ids: [ResolvedSource] = []
            let sources = build.sources.map { source -> PlannedSource in
                switch source.kind {
                case .git(let url, let commit, let tree):
                    if let tree { ids.append(ResolvedSource(name: source.name, directory: "", id: "git-tree:" + tree)) }
                    return PlannedSource(name: source.name, git: url, commit: commit, tree: tree)
                case .archive(let url, let sha256):
                    ids.append(ResolvedSource(name: source.name, directory: "", id: sha256.description))
                    return PlannedSource(name: source.name, url: url, sha256: sha256)
                case .directory(let path):
                    return PlannedSource(name: source.name, dir: path)
                }
            }
            var key: String?
            if ids.count == sources.count,
                let set = plan.packageSets.first(where: { $0.key == environment && $0.source == .lock }),
                let packages = set.packages
            {
                key = compileKey(build, environment: packages, sources: ids, options: plan.options)
            }
            var job = PlannedBuild(
                image: recipe.name, name: build.name, environment: environment, sources: sources, key: key,
                location: build.location.description)
            job.spec = build
            job.directory = recipe.directory
            job.pinnedSources = ids.count == sources.count ? ids : nil
            return job
        }
    }

    /// The version first, then the recipe's tags and `--tag`s, each once. An image narrowed by `--platform` to
    /// fewer platforms than its recipe declares gets every tag suffixed with its platforms (`1.0.0-arm64`,
    /// `1.0.0-amd64-arm64v7`), so it never replaces the multi-platform image a plain build tagged.
    static func tags(_ recipe: Recipe, options: BuildOptions) -> [String] {
        var tags = [options.version ?? recipe.version]
        for tag in recipe.tags + options.extraTags where !tags.contains(tag) { tags.append(tag) }
        guard recipe.platforms != recipe.declaredPlatforms else { return tags }
        let suffix = recipe.platforms.map { $0.architecture + ($0.variant ?? "") }.joined(separator: "-")
        return tags.map { "\($0)-\(suffix)" }
    }

    /// Every Debian package set of every platform, and whether the lock's packages are used or it is resolved.
    static func packageSets(_ recipes: [Recipe], lock: LockFile, mode: LockMode, logger: Logger)
        -> [PlannedPackageSet]
    {
        var result: [PlannedPackageSet] = []
        for recipe in recipes {
            for (layerName, spec, platforms) in recipe.packageSetSpecs {
                for platform in platforms {
                    let key = DebianPackages.key(recipe, layer: layerName, platform: platform)
                    let request = DebianPackages.summary(
                        DebianPackages.request(spec, recipe: recipe, platform: platform))
                    let pins = (lock.packages[key] ?? []).sorted { $0.name < $1.name }
                    let useLock: Bool
                    switch mode {
                    case .locked, .verify: useLock = true
                    case .update: useLock = !pins.isEmpty && lock.packageRequests[key] == request
                    case .refresh: useLock = false
                    }
                    logger.debug(
                        "package set \(key): \(useLock ? "the lock's \(pins.count) packages" : "resolve") (\(mode.rawValue); lock request: \(lock.packageRequests[key] ?? "none"), recipe: \(request))"
                    )
                    result.append(
                        PlannedPackageSet(
                            key: key, image: recipe.name, layer: layerName, platform: platform.description,
                            request: request, split: spec.split == "per-package",
                            source: useLock ? .lock : .resolve, packages: useLock ? pins : nil,
                            location: spec.location.description,
                            resolveRequest: DebianPackages.request(spec, recipe: recipe, platform: platform),
                            at: spec.location))
                }
            }
        }
        return result
    }
}
