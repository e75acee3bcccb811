import ArgumentParser
import Foundation
import KilnBuild
import KilnDebian
import KilnHTTP
import KilnKomodo
import KilnOCI
import KilnRecipe
import KilnRegistry
import KilnStore
import Synchronization

/// Where remote inputs come from and where the lock file is.
struct InputFlags: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "A directory of pre-seeded inputs, found by sha256 or file name (repeatable).", valueName: "dir"))
    var sources: [String] = []

    @Flag(name: .long, help: "Never download: every input must be in the cache or a --sources directory.")
    var offline = false

    @Option(
        name: .customLong("cache-dir"),
        help: ArgumentHelp(
            "Download cache (default: $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln/downloads, else ~/.cache/kiln/downloads).",
            valueName: "dir"))
    var cacheDirectory: String?

    @Option(
        name: .long,
        help: ArgumentHelp("The lock file (default: kiln.lock beside the recipes).", valueName: "file"))
    var lock: String?

    var cache: DownloadCache {
        cacheDirectory.map { DownloadCache(root: $0) } ?? .default()
    }

    /// Downloads trust `--ca-file` and log through the command's logger.
    func options(_ flags: RegistryFlags, trustUnpinned: Bool = false) -> InputOptions {
        InputOptions(
            cache: cache, sources: sources, offline: offline, trustUnpinned: trustUnpinned,
            http: HTTPOptions(caFile: flags.caFile, logger: flags.log.logger))
    }

    /// `--lock`, else `kiln.lock` beside the recipes.
    /// The recipes named on the command line (default: recipes/).
    func recipes(_ paths: [String]) throws -> RecipeSet {
        try RecipeSet.load(paths: paths.isEmpty ? ["recipes"] : paths, derivations: [KomodoMatrix()])
    }

    func lockPath(recipePaths: [String]) -> String {
        lock ?? LockFile.path(besideRecipes: recipePaths)
    }
}

/// Download progress: a live line on a terminal, one line per input in logs.
final class InputReporter: Sendable {
    /// When the live line was last drawn; also keeps two events from printing at once.
    private let drawn = Mutex(Date.distantPast)
    let quiet: Bool

    init(quiet: Bool) { self.quiet = quiet }

    func handle(_ event: InputEvent) {
        drawn.withLock { lastDraw in
            switch event {
            case .found(let url, _, let source):
                if !quiet { Output.status("  input \(url): from \(source)") }
            case .downloading(let url, let done, let total):
                guard !quiet, Date().timeIntervalSince(lastDraw) > 0.2 else { return }
                lastDraw = Date()
                let of = total.map { " / \(Output.bytes($0))" } ?? ""
                Output.progress(
                    "  downloading \(URL(string: url)?.lastPathComponent ?? (url as NSString).lastPathComponent): \(Output.bytes(done))\(of)"
                )
            case .downloaded(let url, let digest, let size, let seconds):
                Output.endProgress()
                if !quiet {
                    Output.status(
                        "  input \(url): downloaded \(Output.bytes(size)) in \(String(format: "%.1fs", seconds)), verified \(Output.short(digest))"
                    )
                }
            case .trusted(let url, let digest):
                // Always printed, even with --json: this is the moment a digest was taken on trust.
                var message =
                    "WARNING: TRUSTED WITHOUT A PUBLISHED CHECKSUM: \(url)\n         recorded \(digest) from what was downloaded"
                if let notes = InputEvent.releaseNotes(forDownload: url) {
                    // Release notes list the bare hex value.
                    message +=
                        "\n         SHA256 \(digest.encoded)\n         compare it with the SHA256 in the release notes: \(notes)"
                        + "\n         if they match, commit recipes/kiln.lock; if not, delete that entry and do not build"
                } else {
                    message += "; compare it with another source before you rely on it"
                }
                Output.status(message)
            }
        }
    }
}

extension RegistryFlags {
    /// Registry settings for base image pulls during a build.
    var options: RegistryOptions { RegistryOptions(insecure: Set(insecure), caFile: caFile, jobs: jobs) }
}
