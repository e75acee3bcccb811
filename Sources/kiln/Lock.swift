import ArgumentParser
import Foundation
import KilnBuild
import KilnStore

struct Lock: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pin every remote input and image digest in the lock file, downloading what is not pinned yet.",
        discussion: """
            A `url` input may leave out `sha256` when its publisher gives no checksum (komodod's release \
            archives, for one). `kiln lock` downloads each such input, records the digest it turned out to \
            have in the lock file (recipes/kiln.lock) and says loudly that it trusted the download. Review the \
            lock diff and commit it: every later build, on any machine, verifies against it, and \
            `kiln build --locked` proves a checkout builds exactly what the lock records.

            Inputs that the recipes pin are fetched and verified too, so the cache is warm afterwards. Debian \
            package sets are resolved again against the mirror and their exact versions and sha256 recorded: \
            this is how a base picks up security updates (a plain `kiln build` keeps the locked versions).

            Every image is then built into the store (--store; layers already there are reused, nothing is \
            tagged) and its digest recorded, so `kiln build --locked` can check it. The lock is always \
            written, also for recipes without any remote input.
            """)

    @Argument(help: "Recipe files or directories (default: recipes/).")
    var paths: [String] = []

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var inputs: InputFlags
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var path: String
        var changed: Bool
        var inputCount: Int
        var images: [Image]

        struct Image: Encodable {
            var reference: String
            var digest: String
        }
    }

    func run() async throws {
        let set = try inputs.recipes(paths)
        let options = BuildOptions(
            lockMode: .refresh, inputs: inputs.options(registryFlags), registry: registryFlags.options)
        let plan = try Pipeline.plan(set, lockPath: inputs.lockPath(recipePaths: paths), options: options)
        // The pins first (they hold even when an image cannot be built here, say a build step's sources are
        // missing), then the images, built untagged so the lock records their digests for `build --locked`.
        let outcome = try await Pipeline.run(
            plan, store: storeOptions.path, as: .lock, events: ProgressReporter().handle)
        let (results, pinned, changed) = (outcome.images, outcome.prepared.inputs.count, outcome.lockChanged)
        let images = "\(results.count) image digest\(results.count == 1 ? "" : "s")"
        if output.json {
            return try Output.json(
                Report(
                    path: plan.lockPath, changed: changed, inputCount: pinned,
                    images: results.map {
                        Report.Image(reference: $0.references.first ?? $0.name, digest: $0.digest.description)
                    }))
        }
        if changed {
            Output.line(
                "updated \(plan.lockPath): \(pinned) inputs pinned, \(images) recorded; review the diff before committing"
            )
        } else {
            Output.line("\(plan.lockPath) already pins all \(pinned) inputs and \(images)")
        }
    }
}
