import Foundation
import KilnDebian
import KilnHTTP
import KilnOCI
import KilnRecipe
import KilnStore

/// Glue between the plan and KilnDebian: downloads of planned package sets for `prepare` (their lock keys and
/// requests are planned in PlanRecipes.swift).
public enum DebianPackages {
    static func architecture(_ platform: Platform) -> String {
        PackageSets.debianArchitecture(platform.architecture, variant: platform.variant)
    }

    /// What the lock records beside a resolved set: the set is resolved again when this changes.
    static func summary(_ request: PackageSetRequest) -> String {
        "\(request.suite) \(request.components.joined(separator: ",")) \(request.architecture): "
            + request.packages.joined(separator: " ")
    }

    typealias Resolutions = [String: (packages: [PinnedPackage], request: String)]

    /// Downloads the package sets of `plan` named by `only` (all when nil): the lock's packages where the plan
    /// takes them from the lock (falling back to resolving when a plain build finds a locked version gone from
    /// the mirror), else resolved against the mirror. `--locked` checks every set against the lock, fetched or
    /// not (a set whose layers all came from the cache is not). Returns the sets by key and the fresh
    /// resolutions `record` writes.
    static func prepare(
        _ plan: BuildPlan, only: Set<String>? = nil, transport: HTTPTransport?,
        progress: @Sendable (String) -> Void = { _ in }, step: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws -> (sets: [String: ResolvedPackageSet], resolved: Resolutions) {
        var sets: [String: ResolvedPackageSet] = [:]
        var resolved: Resolutions = [:]
        guard !plan.packageSets.isEmpty else { return (sets, resolved) }
        // The one download cache: `--cache-dir` applies to .debs as to url inputs.
        let cache = plan.options.inputs.cache
        let environment = plan.options.environment
        let sources = AptSources.load()
        let required = plan.options.lockMode == .locked || plan.options.lockMode == .verify
        for planned in plan.packageSets {
            guard let request = planned.resolveRequest, let location = planned.at else {
                throw BuildError.internalError("package set \(planned.key) was planned without its request")
            }
            let key = planned.key
            let fetch = only?.contains(key) != false
            // An unfetched layer set still needs its mirror (the SBOM names it); an unfetched environment does not.
            if !fetch, !required, plan.builds.contains(where: { $0.environment == key }) { continue }
            do {
                let mirror = try PackageSets.mirror(
                    for: request, environment: environment, sources: sources)
                let keyring = PackageSets.keyring(for: request, mirror: mirror, sources: sources)
                func resolve() async throws -> ResolvedPackageSet {
                    guard let transport else { throw PackageSetError.offlineResolve(key: key) }
                    progress(
                        "\(key): resolving \(request.packages.joined(separator: " ")) in \(request.suite)")
                    let set = try await PackageSets.resolve(
                        request, mirror: mirror, keyring: keyring, cache: cache, transport: transport,
                        step: { step("\(key): \($0)") })
                    resolved[key] = (set.packages, planned.request)
                    return set
                }
                guard planned.source == .lock else {
                    if fetch { sets[key] = try await resolve() }
                    continue
                }
                let pins = plan.lock.packages[key] ?? []
                if required {
                    let missing = request.packages.filter { name in !pins.contains { $0.name == name } }
                    if pins.isEmpty || !missing.isEmpty {
                        throw DebianError.lockIncomplete(
                            key: key, missing: missing.isEmpty ? request.packages : missing)
                    }
                    // Locks written before requests were recorded have none to compare.
                    if let locked = plan.lock.packageRequests[key], locked != planned.request {
                        throw DebianError.lockStale(key: key, locked: locked, requested: planned.request)
                    }
                }
                guard fetch else { continue }
                do {
                    let set = try await fetchLocked(
                        pins, request: request, mirror: mirror, keyring: keyring, cache: cache,
                        transport: transport, step: { step("\(key): \($0)") })
                    sets[key] = set
                    // The same pins with their source packages learnt from the index: recorded like a resolution.
                    if Set(set.packages) != Set(pins) { resolved[key] = (set.packages, planned.request) }
                    progress("\(key): \(pins.count) locked packages")
                } catch DebianError.lockedUnavailable(let name, let version, let mirror) where !required {
                    progress(
                        "\(key): locked \(name) \(version) is gone from \(mirror); resolving the set again")
                    sets[key] = try await resolve()
                }
            } catch let error as DebianError {
                throw BuildError.recipe(location, "\(error)")
            } catch let error as PackageSetError {
                throw BuildError.recipe(location, "\(error)")
            }
        }
        return (sets, resolved)
    }

    /// The locked packages; offline, only when every .deb is already in the download cache.
    static func fetchLocked(
        _ pins: [PinnedPackage], request: PackageSetRequest, mirror: String, keyring: String, cache: DownloadCache,
        transport: HTTPTransport?, step: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws -> ResolvedPackageSet {
        guard let transport else {
            let missing = pins.filter { cache.cached(sha256: $0.sha256, size: nil) == nil }.map(\.name)
            guard missing.isEmpty else {
                throw PackageSetError.offlineMissing(packages: missing, cache: cache.root)
            }
            let trimmed = mirror.hasSuffix("/") ? String(mirror.dropLast()) : mirror
            return ResolvedPackageSet(mirror: trimmed, packages: pins.sorted { $0.name < $1.name }, cache: cache)
        }
        return try await PackageSets.fetchLocked(
            pins, request: request, mirror: mirror, keyring: keyring, cache: cache, transport: transport, step: step)
    }

    /// What `--offline` refuses about a package set.
    enum PackageSetError: Error, CustomStringConvertible {
        case offlineResolve(key: String)
        case offlineMissing(packages: [String], cache: String)

        var description: String {
            switch self {
            case .offlineResolve(let key):
                return
                    "package set \(key) must be resolved against its mirror (the lock has no matching set) and --offline forbids it: run `kiln lock` with network and commit the lock"
            case .offlineMissing(let packages, let cache):
                return
                    "--offline: locked packages not in the download cache \(cache): \(packages.joined(separator: ", ")); build once with network (or copy the cache)"
            }
        }
    }
}

extension PreparedInputs {
    /// A layer's package set as the SBOM and the provenance record it: as prepared, else (every layer using it
    /// came from the cache, so it was not fetched) the plan's pins and the mirror its request selects.
    func packageSet(_ key: String) -> (mirror: String, packages: [PinnedPackage])? {
        if let resolved = packages[key] { return (resolved.mirror, resolved.packages) }
        guard let set = plan.packageSets.first(where: { $0.key == key }), let pins = set.packages,
            let request = set.resolveRequest,
            let mirror = try? PackageSets.mirror(
                for: request, environment: plan.options.environment, sources: AptSources.load())
        else { return nil }
        return (mirror.hasSuffix("/") ? String(mirror.dropLast()) : mirror, pins)
    }
}
