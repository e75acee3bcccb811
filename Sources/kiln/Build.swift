import ArgumentParser
import Foundation
import KilnBuild
import KilnLayer
import KilnOCI
import KilnStore

struct Build: AsyncParsableCommand, NetworkedCommand {
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
              kiln build --platform linux/arm64
                                            build only the arm64 images of multi-platform recipes
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

    @Flag(
        name: .customLong("allow-foreign-binaries"),
        help: "Accept ELF files built for another machine than the image's platform (refused by default).")
    var allowForeignBinaries = false

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

    @Flag(help: "Run every build step twice and fail naming the first output file that differs.")
    var checkReproducible = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Build only these of each recipe's platforms (repeatable or comma-separated, e.g. linux/arm64).",
            valueName: "os/arch"))
    var platform: [String] = []

    @Option(
        name: .customLong("cache-from"),
        help: ArgumentHelp(
            "Take layers from this registry cache (repeatable, tried in order), as BuildKit's --cache-from.",
            valueName: "REGISTRY/REPOSITORY"))
    var cacheFrom: [String] = []

    @Option(
        name: .customLong("cache-to"),
        help: ArgumentHelp(
            "Publish every layer of the build to this registry cache (one tag per layer key).",
            valueName: "REGISTRY/REPOSITORY"))
    var cacheTo: String?

    /// `--platform` values, each parsed; nil when none is given.
    var platforms: [Platform]? {
        let names = platform.flatMap { $0.split(separator: ",").map(String.init) }
        return names.isEmpty ? nil : names.compactMap(Platform.init(parsing:))
    }

    struct Report: Encodable {
        var images: [BuiltImage]
    }

    func validate() throws {
        if inputs.offline && (!cacheFrom.isEmpty || cacheTo != nil) {
            throw ValidationError(
                "--offline never opens a connection, and --cache-from/--cache-to need the registry: drop one of them")
        }
        for name in platform.flatMap({ $0.split(separator: ",", omittingEmptySubsequences: false) }) {
            guard let parsed = Platform(parsing: String(name)), parsed.os == "linux" else {
                throw ValidationError("--platform '\(name)' is not a Linux platform: write os/arch, e.g. linux/arm64")
            }
        }
        for tag in tags { try OCITag.check(tag, as: "tag") }
        if let version { try OCITag.check(version, as: "version") }
    }

    func run() async throws {
        let started = Date()
        // Arguments that exist on disk are recipe paths; the rest name images.
        let paths = targets.filter { FileManager.default.fileExists(atPath: $0) }
        let names = targets.filter { !FileManager.default.fileExists(atPath: $0) }
        let set = try inputs.recipes(paths)
        for name in names where set.recipe(named: name) == nil {
            throw ValidationError(
                "no recipe named '\(name)' (known: \(set.recipes.map(\.name).joined(separator: ", "))), and no such file"
            )
        }
        var options = BuildOptions(
            compression: compression, threads: threads ?? ProcessInfo.processInfo.activeProcessorCount,
            rehash: rehash, version: version, extraTags: tags, revision: revision,
            lockMode: locked ? .locked : .update, jobs: parallel, inputs: inputs.options(registryFlags),
            registry: registryFlags.options)
        options.allowForeignBinaries = allowForeignBinaries
        options.platforms = platforms
        options.cacheFrom = cacheFrom
        options.cacheTo = cacheTo
        let json = output.json
        let plan = try Pipeline.plan(
            set, only: names, lockPath: inputs.lockPath(recipePaths: paths), options: options)
        if dryRun {
            // Everything a build would refuse before touching the network is refused here too.
            try await Pipeline.check(plan)
            try PlanOutput.print(plan, json: json)
            return
        }
        let outcome = try await Pipeline.run(
            plan, store: storeOptions.path, as: PipelineRun(checkReproducible: checkReproducible),
            events: ProgressReporter(quiet: json).handle)
        if let record = outcome.lock, outcome.lockChanged, !json {
            Output.status("updated \(record.path)")
        }
        if json { return try Output.json(Report(images: outcome.images)) }
        Output.line(ProgressReporter.summary(outcome.images, since: started))
    }
}

extension LayerCompression: ExpressibleByArgument {}
