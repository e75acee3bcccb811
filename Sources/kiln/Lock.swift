import ArgumentParser
import Foundation
import KilnBuild
import KilnHTTP
import KilnOCI
import KilnRecipe

struct Lock: AsyncParsableCommand {
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
        let set: RecipeSet
        do {
            set = try RecipeSet.load(paths: paths.isEmpty ? ["recipes"] : paths)
        } catch let error as RecipeError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(65)
        }
        let lockPath = inputs.lockPath(recipePaths: paths)
        do {
            // Package sets first: they write their part of the lock, which is then read back.
            let packages = try await DebianPackages.prepare(
                set.recipes, lockPath: lockPath, use: .refreshed,
                httpOptions: HTTPOptions(caFile: registryFlags.caFile), cache: inputs.cache,
                progress: { Output.status($0) })
            try packages.saveLock()
            var lock = try LockFile.load(lockPath)
            let remote = try RemoteInputs.collect(set.recipes, lock: lock, recipesWin: true)
            let resolved = try await RemoteInputs.fetch(
                remote, options: inputs.options(caFile: registryFlags.caFile, trustUnpinned: true),
                events: InputReporter(quiet: false).handle)
            let before = lock
            for (url, digest) in resolved { lock.inputs[url] = digest }
            // URLs no recipe names any more leave the lock.
            for url in lock.inputs.keys where !remote.contains(where: { $0.url == url }) { lock.inputs[url] = nil }
            if lock != before {
                try lock.save(lockPath)
                Output.line("updated \(lockPath): \(resolved.count) inputs pinned; review the diff before committing")
            } else {
                Output.line("\(lockPath) already pins all \(resolved.count) inputs")
            }
        } catch let error as RecipeError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(65)
        }
    }
}
