import Foundation
import KilnDebian
import KilnHTTP
import KilnOCI
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
}

extension Pipeline {
    /// Fetches what `plan` needs (base images only when given the store they go into), through one HTTP
    /// transport (none at all with `--offline`, where anything not on this machine is an error), then the
    /// build steps' sources. Local files are checked first: a missing file stops before any download.
    public static func prepare(
        _ plan: BuildPlan, store: String?, events: @escaping @Sendable (BuildEvent) -> Void = { _ in }
    ) async throws -> PreparedInputs {
        var prepared = try await fetchInputs(plan, store: store, events: events)
        prepared.sources = try sources(plan)
        return prepared
    }

    /// Every build step's sources, found (a `--sources` archive, the source cache) or fetched with git, and
    /// checked against their pins, by `recipe/build`.
    static func sources(_ plan: BuildPlan) throws -> [String: [ResolvedSource]] {
        var result: [String: [ResolvedSource]] = [:]
        for recipe in plan.recipes {
            for build in recipe.builds {
                result["\(recipe.name)/\(build.name)"] = try build.sources.map {
                    try BuildSources.resolve($0, recipe: recipe, options: plan.options.inputs)
                }
            }
        }
        return result
    }

    /// The url inputs, base images and Debian package sets of `plan`: what `kiln lock` pins (before it fetches
    /// sources, so the pins hold even where a step's sources are missing).
    static func fetchInputs(
        _ plan: BuildPlan, store: String?, events: @escaping @Sendable (BuildEvent) -> Void
    ) async throws -> PreparedInputs {
        let options = plan.options
        let remote = try await check(plan)
        let transport = options.offline ? nil : try HTTPTransport(options: options.http)
        do {
            var inputOptions = options.inputs
            inputOptions.trustUnpinned = options.lockMode == .refresh
            let inputs: [String: Digest]
            do {
                inputs = try await RemoteInputs.fetch(
                    remote, options: inputOptions, transport: transport, events: { events(.input($0)) })
            } catch let error as RecipeError {
                throw BuildError.inputsMissing(error)
            }
            // The store is opened (created) only once the inputs are at hand: a build that cannot start
            // leaves no store behind.
            if let store {
                try await BaseImages.fetchMissing(
                    plan.recipes, into: OCILayout(root: store), options: options.registry, transport: transport,
                    events: { events(.transfer($0)) })
            }
            let (packages, resolved) = try await DebianPackages.prepare(
                plan, transport: transport, progress: { events(.status($0)) }, step: { events(.step($0)) })
            await transport?.shutdown()
            var prepared = PreparedInputs(plan: plan, inputs: inputs, packages: packages, resolved: resolved)
            prepared.replan()
            return prepared
        } catch {
            await transport?.shutdown()
            throw error
        }
    }

    /// Every check that needs no network, as `prepare` runs it first and `kiln build --dry-run` runs it alone:
    /// registry base references (address, port, name), local inputs, and with `--locked` the lock's pins.
    /// Returns the remote inputs to fetch.
    @discardableResult
    public static func check(_ plan: BuildPlan) async throws -> [RemoteInput] {
        let options = plan.options
        try checkBaseReferences(plan.recipes)
        let remote = try RemoteInputs.collect(plan.recipes, lock: plan.lock, recipesWin: options.lockMode == .refresh)
        if options.lockMode != .refresh { try await checkLocalInputs(plan.recipes, remote: remote, options: options) }
        if options.lockMode == .locked { try checkLockedInputs(remote, plan: plan) }
        return remote
    }

    /// A registry base (`base: REGISTRY/NAME:TAG@sha256:…`) must be a reference Kiln could fetch: an error at
    /// the recipe's `base:` line otherwise (a port out of range, an upper-case repository, …).
    static func checkBaseReferences(_ recipes: [Recipe]) throws {
        for recipe in recipes {
            guard case .image(let text, let digest) = recipe.base else { continue }
            do {
                _ = try Reference(parsing: "\(text)@\(digest)")
            } catch {
                throw BuildError.recipe(recipe.baseLocation ?? recipe.location, "\(error)")
            }
        }
    }

    /// Every local input must exist: reported together, at their recipe lines, before anything is fetched or
    /// built. The report also lists the remote inputs that are not at hand yet (looked up offline), so one run
    /// shows everything to provide.
    static func checkLocalInputs(_ recipes: [Recipe], remote: [RemoteInput], options: BuildOptions) async throws {
        var problems: [Diagnostic] = []
        for recipe in recipes {
            for layer in recipe.selectedLayers {
                for case .add(let add) in layer.items {
                    guard case .local(let pattern) = add.source else { continue }
                    let matches = LocalSources.matches(pattern, in: recipe.directory)
                    if matches.isEmpty {
                        problems.append(
                            Diagnostic(
                                add.location, "'\(pattern)' matches no file in \(recipe.directory)",
                                hint:
                                    "paths in a recipe are relative to the recipe file; check the name or add the file")
                        )
                    }
                    for path in matches {
                        guard let link = LocalSources.escape(path, in: recipe.directory) else { continue }
                        problems.append(LocalSources.escapeDiagnostic(add.location, path: path, link: link))
                    }
                }
            }
        }
        guard !problems.isEmpty else { return }
        var offline = options.inputs
        offline.offline = true
        do {
            _ = try await RemoteInputs.fetch(remote, options: offline, transport: nil)
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

extension PreparedInputs {
    /// Plans every image again with the package sets as prepared, so split sets that were resolved (or
    /// resolved again) list one layer per package they resolved to.
    mutating func replan() {
        var pins: [String: [PinnedPackage]] = [:]
        for (key, set) in packages { pins[key] = set.packages }
        for index in plan.packageSets.indices {
            plan.packageSets[index].packages = pins[plan.packageSets[index].key]
        }
        plan.images = plan.recipes.map { Pipeline.image($0, plan: plan, pins: pins) }
    }
}
