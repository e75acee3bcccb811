import Foundation
import KilnDebian
import KilnHTTP
import KilnLayer
import KilnOCI
import KilnProcess
import KilnRecipe
import KilnSandbox
import KilnStore

/// Every build step's outputs, by `recipe/build`: what `compile` returns and `build`'s layers take.
public typealias BuildOutputs = [String: CompiledBuild]

/// A build step's outputs in the store, ready for layers to take.
public struct CompiledBuild: Sendable {
    /// `<store>/builds/<key>`: `out/…` and `work/…` hold the declared outputs at their sandbox paths.
    public var directory: String
    /// The cache key: sha256 of everything the step's outputs depend on (see `Pipeline.compileKey`).
    public var key: String
    /// False when the outputs were already in the store and nothing ran.
    public var ran: Bool
    /// The step's full output.
    public var log: String
}

extension Pipeline {
    /// Raised when what `compileKey` hashes changes meaning.
    public static let compileEncodingVersion = 1

    /// Runs every build step of the planned recipes whose outputs are not in the store yet, between `prepare`
    /// (which resolved their environments as package sets `recipe/build:NAME`, and their sources) and `build`
    /// (whose layers take the outputs it returns). A step that fails leaves only its log: nothing is tagged, the store stays valid.
    /// With `checkReproducible`, every step runs twice (even when its outputs are stored) and the first output
    /// file that differs between the runs fails the build, named.
    public static func compile(
        _ prepared: PreparedInputs, store: String, checkReproducible: Bool = false,
        events: @escaping @Sendable (BuildEvent) -> Void = { _ in }
    ) async throws -> BuildOutputs {
        let options = prepared.plan.options
        let transport =
            options.cacheFrom.isEmpty && options.cacheTo == nil ? nil : try HTTPTransport(options: options.http)
        do {
            let remote = try transport.flatMap { try RegistryBuildOutputs(options: options, transport: $0) }
            let outputs = try await compileAll(
                prepared, store: store, remote: remote, checkReproducible: checkReproducible,
                events: { events(.status($0)) })
            await transport?.shutdown()
            return outputs
        } catch {
            await transport?.shutdown()
            throw error
        }
    }

    static func compileAll(
        _ prepared: PreparedInputs, store: String, remote: RegistryBuildOutputs?, checkReproducible: Bool,
        events: @escaping @Sendable (String) -> Void
    ) async throws -> BuildOutputs {
        let options = prepared.plan.options
        var outputs: BuildOutputs = [:]
        // Outputs only layers found by their plan key use are not fetched (a step is still published to
        // `--cache-to`, which takes every step's outputs).
        let needed = prepared.plan.stillNeeded(
            found: Set(prepared.planKeyedLayers.keys), cachedBuilds: prepared.cachedBuilds
        ).outputs
        for planned in prepared.plan.builds {
            if prepared.cachedBuilds.contains(planned.id), !needed.contains(planned.id), options.cacheTo == nil {
                events("\(planned.name): outputs not needed (every layer using them came from the cache)")
                continue
            }
            if prepared.cachedBuilds.contains(planned.id), let build = planned.spec, let key = planned.key {
                // Prepare found these outputs (here or in a --cache-from registry) and fetched nothing for them.
                guard
                    let reused = try await reuse(
                        build.name, at: build.location, key: key, store: store, remote: remote,
                        checkReproducible: false, events: events)
                else {
                    throw BuildError.recipe(
                        build.location,
                        "the outputs of \(build.name) (\(key.prefix(12))) were cached when the build started and "
                            + "are gone now; build again")
                }
                outputs[planned.id] = reused
                await remote?.publish(reused.directory, key: key, staging: store + "/builds")
                continue
            }
            guard let build = planned.spec, let set = prepared.packages[planned.environment],
                let sources = prepared.sources[planned.id]
            else {
                throw BuildError.internalError("build \(planned.id): its environment or sources were not prepared")
            }
            let key = compileKey(build, environment: set.packages, sources: sources, options: options)
            let compiled = try await compileOne(
                build, key: key, set: set, sources: sources, store: store, options: options, remote: remote,
                checkReproducible: checkReproducible, events: events)
            outputs[planned.id] = compiled
            await remote?.publish(compiled.directory, key: key, staging: store + "/builds")
        }
        return outputs
    }

    /// Everything a step's outputs depend on: the environment as locked, each source's content id, the
    /// command, the step's variables, its outputs, SOURCE_DATE_EPOCH and the encoding version. The wall-clock
    /// limit is left out: it decides whether a step finishes, not what it makes.
    static func compileKey(
        _ build: BuildSpec, environment: [PinnedPackage], sources: [ResolvedSource], options: BuildOptions
    ) -> String {
        var lines = ["kiln-compile-v\(compileEncodingVersion)", "sandbox-v\(EnvironmentRoot.encodingVersion)"]
        lines += environment.map { "package \($0.name) \($0.version) \($0.architecture) \($0.sha256)" }.sorted()
        lines += sources.map { "source \($0.name) \($0.id)" }
        lines += build.run.command.map { "argv \($0.debugDescription)" }
        lines += build.env.sorted { $0.key < $1.key }.map { "env \($0.key)=\($0.value.debugDescription)" }
        lines += build.outputs.map { "output \($0)" }
        lines.append("source-date-epoch \(options.sourceDateEpoch)")
        return Digest.sha256(lines.joined(separator: "\n")).encoded
    }

    /// The step's outputs under `key` when they are in the store, or (unpacked and checked) in a `--cache-from`
    /// registry; nil when the step must run. `--check-reproducible` runs every step.
    static func reuse(
        _ name: String, at location: SourceLocation, key: String, store: String, remote: RegistryBuildOutputs?,
        checkReproducible: Bool, events: @escaping @Sendable (String) -> Void
    ) async throws -> CompiledBuild? {
        guard !checkReproducible else { return nil }
        let builds = store + "/builds"
        let directory = builds + "/" + key
        let log = builds + "/logs/" + key + ".log"
        if FileManager.default.fileExists(atPath: directory + "/outputs.json") {
            events("\(name): unchanged (\(key.prefix(12)))")
            return CompiledBuild(directory: directory, key: key, ran: false, log: log)
        }
        try FileManager.default.createDirectory(atPath: builds + "/logs", withIntermediateDirectories: true)
        guard let remote else { return nil }
        let staging = builds + "/.tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { HostTree.remove(staging) }
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        if let place = await remote.fetch(key, into: staging + "/result", step: name) {
            do {
                try StagedDirectory.publish(staging + "/result", as: directory)
            } catch {
                throw BuildError.recipe(location, "cannot store build \(name): \(error)")
            }
            events("\(name): outputs from the cache \(place) (\(key.prefix(12))), nothing ran")
            return CompiledBuild(directory: directory, key: key, ran: false, log: log)
        }
        return nil
    }

    static func compileOne(
        _ build: BuildSpec, key: String, set: ResolvedPackageSet, sources: [ResolvedSource], store: String,
        options: BuildOptions, remote: RegistryBuildOutputs? = nil, checkReproducible: Bool,
        events: @escaping @Sendable (String) -> Void
    ) async throws -> CompiledBuild {
        if let reused = try await reuse(
            build.name, at: build.location, key: key, store: store, remote: remote,
            checkReproducible: checkReproducible, events: events)
        {
            return reused
        }
        let builds = store + "/builds"
        let directory = builds + "/" + key
        let log = builds + "/logs/" + key + ".log"
        try FileManager.default.createDirectory(atPath: builds + "/logs", withIntermediateDirectories: true)
        // Staging of builds that were killed (their process is gone), and unfinished environment roots and
        // source trees of the same kind.
        StagedDirectory.removeStale(in: builds, remove: HostTree.remove)
        for parent in ["/environments", "/sources"] {
            StagedDirectory.removeStale(in: options.inputs.cache.root + parent, remove: HostTree.remove)
        }
        let started = Date()
        let environments = options.inputs.cache.root + "/environments"
        let pins = set.packages.map { "\($0.name) \($0.version) \($0.architecture) \($0.sha256)" }
        let root: EnvironmentRoot
        do {
            root = try await Blocking.run("kiln-environment") {
                try EnvironmentRoot.prepare(
                    key: EnvironmentRoot.key(packages: pins),
                    entries: try set.unpack().flatMap(\.unpacked.entries), cache: environments)
            }
        } catch let error as SandboxError {
            throw BuildError.recipe(build.location, "\(error)")
        }
        events(
            "\(build.name): environment of \(set.packages.count) packages ready in "
                + String(format: "%.1fs", Date().timeIntervalSince(started)))
        var stagings: [String] = []
        defer { for staging in stagings { HostTree.remove(staging) } }
        for run in 1...(checkReproducible ? 2 : 1) {
            let staging = builds + "/.tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            stagings.append(staging)
            for part in ["work", "out", "result"] {
                try FileManager.default.createDirectory(atPath: staging + "/" + part, withIntermediateDirectories: true)
            }
            let spec = SandboxSpec(
                name: build.name, root: root.path,
                sources: Dictionary(sources.map { ($0.name, $0.directory) }, uniquingKeysWith: { a, _ in a }),
                work: staging + "/work", out: staging + "/out", command: build.run.command, environment: build.env,
                sourceDateEpoch: Int(options.sourceDateEpoch), timeLimit: build.timeout,
                log: run == 1 ? log : builds + "/logs/" + key + ".run2.log", limits: SandboxLimits(build.limits))
            do {
                try await Blocking.run("kiln-sandbox") {
                    try SandboxRunner.run(spec, logger: options.logger, output: events)
                }
                try StepOutputs.collect(build.outputs, build: build.name, staging: staging, into: staging + "/result")
                try AtomicFile.write(
                    try CanonicalJSON.pretty(try outputListing(staging + "/result")),
                    to: staging + "/result/outputs.json")
            } catch let error as SandboxError {
                throw BuildError.recipe(build.location, "\(error)")
            }
        }
        if checkReproducible {
            let listings = try stagings.map { try outputListing($0 + "/result") }
            if let path = (Set(listings[0].keys).union(listings[1].keys)).sorted().first(where: {
                listings[0][$0] != listings[1][$0]
            }) {
                throw BuildError.recipe(
                    build.location,
                    "build \(build.name) is not reproducible: \(path) differs between two "
                        + "runs (\(listings[0][path] ?? "absent") vs \(listings[1][path] ?? "absent"))")
            }
            events("\(build.name): reproducible (two runs, identical outputs)")
            if FileManager.default.fileExists(atPath: directory + "/outputs.json") {
                return CompiledBuild(directory: directory, key: key, ran: true, log: log)
            }
        }
        do {
            try StagedDirectory.publish(stagings[0] + "/result", as: directory)
        } catch {
            throw BuildError.recipe(build.location, "cannot store build \(build.name): \(error)")
        }
        events("\(build.name): built in " + String(format: "%.1fs", Date().timeIntervalSince(started)))
        return CompiledBuild(directory: directory, key: key, ran: true, log: log)
    }

    /// Every regular file under `result` (as `/out/…`, `/work/…`) → `MODE sha256:…`; `outputs.json`, written
    /// last, marks a result complete.
    static func outputListing(_ result: String) throws -> [String: String] {
        try StepOutputs.listing(result) { try FileDigests.hash($0) }
    }
}

extension SandboxLimits {
    /// Kiln's defaults, with what the recipe's `limits:` sets.
    init(_ recipe: BuildLimits) {
        let defaults = SandboxLimits.defaults
        self.init(
            tmp: recipe.tmp ?? defaults.tmp, disk: recipe.disk ?? defaults.disk, log: recipe.log ?? defaults.log,
            processes: recipe.processes ?? defaults.processes)
    }
}
