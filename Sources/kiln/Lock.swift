import ArgumentParser
import Foundation
import KilnBuild

struct Lock: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pin every remote input in the lock file, downloading what is not pinned yet.",
        discussion: """
            A `url` input may leave out `sha256` when its publisher gives no checksum (komodod's release \
            archives, for one). `kiln lock` downloads each such input, records the digest it turned out to \
            have in the lock file (recipes/kiln.lock) and says loudly that it trusted the download. Review the \
            lock diff and commit it: every later build, on any machine, verifies against it, and \
            `kiln build --locked` proves a checkout builds exactly what the lock records.

            Inputs that the recipes pin are fetched and verified too, so the cache is warm afterwards. Debian \
            package sets are resolved again against the mirror and their exact versions and sha256 recorded: \
            this is how a base picks up security updates (a plain `kiln build` keeps the locked versions).
            """)

    @Argument(help: "Recipe files or directories (default: recipes/).")
    var paths: [String] = []

    @OptionGroup var inputs: InputFlags
    @OptionGroup var registryFlags: RegistryFlags

    func run() async throws {
        let set = try inputs.recipes(paths)
        let options = BuildOptions(
            lockMode: .refresh, inputs: inputs.options(caFile: registryFlags.caFile), registry: registryFlags.options)
        let plan = try Pipeline.plan(set, lockPath: inputs.lockPath(recipePaths: paths), options: options)
        let prepared = try await Pipeline.prepare(plan, store: nil, events: PrepareReporter(quiet: false).handle)
        let pinned = prepared.inputs.count
        if let record = try Pipeline.record(prepared), record.changed {
            Output.line("updated \(record.path): \(pinned) inputs pinned; review the diff before committing")
        } else {
            Output.line("\(plan.lockPath) already pins all \(pinned) inputs")
        }
    }
}
