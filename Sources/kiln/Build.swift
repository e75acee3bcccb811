import ArgumentParser
import Foundation
import KilnBuild
import KilnHTTP
import KilnLayer
import KilnOCI
import KilnRecipe
import KilnRegistry
import KilnStore

struct Build: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build recipes into images in the local store.",
        discussion: """
            Builds every recipe found in the given files and directories (default: recipes/), bases first. \
            A layer whose inputs and spec are unchanged is reused, not rebuilt; a rebuild of unchanged \
            recipes only checks inputs (by size, mtime, ctime and inode; --rehash reads them all).

            Naming images builds just those and the recipes they build on:
              kiln build recipes komodod
            Each image is tagged NAME:VERSION (and any --tag); `kiln images` lists them.

            Output is reproducible: the same recipes and inputs give the same digests anywhere. Set \
            SOURCE_DATE_EPOCH to stamp files and configs with another fixed time than 1970-01-01.

            Remote inputs (url + sha256) are downloaded once per machine into a cache and verified; \
            --sources DIR finds them pre-seeded (by sha256 or file name) and --offline never touches the \
            network. The build records every input digest and image digest in the lock file \
            (recipes/kiln.lock); with --locked it fails instead if anything would differ from it. Debian \
            package sets come from the lock while the recipe asks for the same set (no mirror is asked); \
            `kiln lock` resolves them again to pick up updates:
              kiln build --locked           prove this checkout builds exactly what the lock records
              kiln build --dry-run          list every image, layer and input without building
            """)

    @Argument(help: "Recipe files or directories, then optionally image names to build.")
    var targets: [String] = []

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var registryFlags: RegistryFlags

    @Option(name: .long, help: "Use this version (tag) for every image instead of the recipes' own.")
    var version: String?

    @Option(name: .customLong("tag"), help: "Add a tag to every image built (repeatable), e.g. the git commit.")
    var tags: [String] = []

    @Option(name: .long, help: "Source revision to record in the images' annotations.")
    var revision: String?

    @Option(name: .long, help: "Layer compression for every image: gzip (default), zstd or none.")
    var compression: LayerCompression?

    @Option(name: .long, help: "Compression threads (output is identical for any number).")
    var threads: Int?

    @Flag(name: .long, help: "Hash every input file again instead of trusting unchanged file metadata.")
    var rehash = false

    @OptionGroup var inputs: InputFlags

    @Flag(
        name: .long,
        help: "Use exactly what kiln.lock records (inputs, package sets); fail, tagging nothing, on any difference.")
    var locked = false

    @Flag(
        name: .customLong("dry-run"), help: "Print the plan (images, layers, inputs and their digests); build nothing.")
    var dryRun = false

    @Option(name: .long, help: "Recipes built at once (each also compresses on several threads).")
    var parallel: Int = 2

    func validate() throws {
        for tag in tags + (version.map { [$0] } ?? []) {
            guard tag.range(of: #"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$"#, options: .regularExpression) != nil else {
                throw ValidationError(
                    "'\(tag)' is not a valid OCI tag: use letters, digits, _ . - (max 128 characters)")
            }
        }
    }

    func run() async throws {
        let started = Date()
        // Arguments that exist on disk are recipe paths; the rest name images.
        let paths = targets.filter { FileManager.default.fileExists(atPath: $0) }
        let names = targets.filter { !FileManager.default.fileExists(atPath: $0) }
        let set: RecipeSet
        do {
            set = try RecipeSet.load(paths: paths.isEmpty ? ["recipes"] : paths)
        } catch let error as RecipeError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(65)
        }
        for name in names where set.recipe(named: name) == nil {
            throw ValidationError(
                "no recipe named '\(name)' (known: \(set.recipes.map(\.name).joined(separator: ", "))), and no such file"
            )
        }
        let recipes = names.isEmpty ? set.recipes : set.closure(of: names)
        let lockPath = inputs.lockPath(recipePaths: paths)
        let lock = try LockFile.load(lockPath)
        let remote: [RemoteInput]
        do {
            remote = try RemoteInputs.collect(recipes, lock: lock)
            if !dryRun { try await checkLocalInputs(recipes, remote: remote) }
        } catch let error as RecipeError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(65)
        }
        if dryRun { return try Plan.print(recipes, inputs: remote, lock: lock, json: output.json) }
        if locked { try checkLockedInputs(remote, lock: lock, lockPath: lockPath) }
        let json = output.json
        let resolved: [String: Digest]
        do {
            resolved = try await RemoteInputs.fetch(
                remote, options: inputs.options(caFile: registryFlags.caFile),
                events: InputReporter(quiet: json).handle)
        } catch let error as RecipeError {
            FileHandle.standardError.write(
                Data((error.description + "\nnothing was built: provide the inputs above first\n").utf8))
            throw ExitCode(66)
        }
        let layout = try OCILayout(root: storeOptions.path)
        // Digest-pinned registry bases are fetched once; later builds find them in the store.
        _ = try await BaseImages.fetchMissing(
            recipes, into: layout,
            options: RegistryOptions(
                insecure: Set(registryFlags.insecure), caFile: registryFlags.caFile, jobs: registryFlags.jobs),
            httpOptions: HTTPOptions(caFile: registryFlags.caFile), events: TransferReporter(quiet: json).handle)
        var options = BuildOptions(
            compression: compression, threads: threads ?? ProcessInfo.processInfo.activeProcessorCount,
            rehash: rehash, version: version, extraTags: tags, revision: revision, downloads: inputs.cache,
            remoteInputs: resolved, lockedImages: locked ? lock.images : nil)
        options.locked = locked
        // Debian package sets: resolved (or taken from the lock) and downloaded before the build.
        options.packages = try await DebianPackages.prepare(
            recipes, lockPath: lockPath, use: locked ? .required : .preferred,
            httpOptions: HTTPOptions(caFile: registryFlags.caFile), cache: inputs.cache,
            progress: { if !json { Output.status($0) } })
        let reporter = ProgressReporter()
        let builder = Builder(
            layout: layout, options: options, events: { event in if !json { reporter.handle(event) } })
        let results: [BuiltImage]
        do {
            results = try builder.build(recipes, all: set, jobs: parallel)
            try options.packages.saveLock()
        } catch let error as RecipeError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(65)
        }
        // A lock file that exists (made by `kiln lock`, checked in) is kept up to date; none is created here.
        if !locked && FileManager.default.fileExists(atPath: lockPath) {
            // Read again: the package sets may just have been recorded.
            var lock = try LockFile.load(lockPath)
            let before = lock
            for (url, digest) in resolved { lock.inputs[url] = digest }
            for result in results { lock.images[result.references[0]] = result.digest }
            if lock != before {
                try lock.save(lockPath)
                if !json { Output.status("updated \(lockPath)") }
            }
        }
        if json { return try Output.json(results) }
        let built = results.flatMap(\.layers).filter { !$0.reused }.count
        let reused = results.flatMap(\.layers).filter(\.reused).count
        Output.line(
            "built \(results.count) image\(results.count == 1 ? "" : "s") (\(built) layers written, \(reused) reused) in "
                + String(format: "%.1fs", Date().timeIntervalSince(started)))
    }

    /// Missing local files stop the build before any download; the report also lists the remote inputs that
    /// are not at hand yet (looked up offline), so one run shows everything to provide.
    func checkLocalInputs(_ recipes: [Recipe], remote: [RemoteInput]) async throws {
        do {
            try Builder.checkLocalInputs(recipes)
        } catch let local as RecipeError {
            var options = inputs.options(caFile: registryFlags.caFile)
            options.offline = true
            var diagnostics = local.diagnostics
            do {
                _ = try await RemoteInputs.fetch(remote, options: options)
            } catch let missing as RecipeError {
                diagnostics += missing.diagnostics
            }
            throw RecipeError(diagnostics)
        }
    }

    /// `--locked`: every input must be pinned by the lock to the digest the recipes give.
    func checkLockedInputs(_ remote: [RemoteInput], lock: LockFile, lockPath: String) throws {
        var problems: [String] = []
        for input in remote where lock.inputs[input.url] == nil || lock.inputs[input.url] != input.sha256 {
            problems.append(
                "\(input.location): input \(input.url): lock has \(lock.inputs[input.url].map(\.description) ?? "nothing"), recipe gives \(input.sha256.map(\.description) ?? "no sha256")"
            )
        }
        guard problems.isEmpty else {
            FileHandle.standardError.write(
                Data(
                    (problems.joined(separator: "\n")
                        + "\n--locked: \(lockPath) does not match the recipes; nothing was built. Review, then run `kiln lock` or build without --locked.\n")
                        .utf8))
            throw ExitCode(65)
        }
    }
}

/// Turns build events into human output: a line per layer and per image, a live progress line on a terminal.
final class ProgressReporter: @unchecked Sendable {
    private let lock = NSLock()
    private var lastDraw = Date.distantPast

    func handle(_ event: BuildEvent) {
        lock.lock()
        defer { lock.unlock() }
        switch event {
        case .layerReused(let image, let layer, let digest):
            Output.status("  \(image) ▸ \(layer): reused \(Output.short(digest))")
        case .layerStarted(let image, let layer, let bytes):
            if !Output.isTerminal && bytes > 64 << 20 {
                Output.status("  \(image) ▸ \(layer): writing \(Output.bytes(bytes)) …")
            }
        case .layerProgress(let image, let layer, let done, let total):
            guard Date().timeIntervalSince(lastDraw) > 0.2, total > 0 else { return }
            lastDraw = Date()
            Output.progress(
                "  \(image) ▸ \(layer): \(Output.bytes(done)) / \(Output.bytes(total)) (\(done * 100 / total)%)")
        case .layerBuilt(let image, let layer, let digest, let size, let seconds):
            Output.endProgress()
            Output.status(
                "  \(image) ▸ \(layer): built \(Output.short(digest)) \(Output.bytes(size)) in \(String(format: "%.1fs", seconds))"
            )
        case .imageTagged(_, let references, let digest):
            Output.status("\(references.joined(separator: ", ")) → \(digest)")
        }
    }
}

extension LayerCompression: ExpressibleByArgument {}
