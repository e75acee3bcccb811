import ArgumentParser
import Foundation
import KilnOCI
import KilnRegistry
import KilnRelease
import KilnStore

struct Diff: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show which images and layers changed between two releases.",
        discussion: """
            Compares releases/A.json with releases/B.json (or the registry's release artifacts with --to): each \
            image is unchanged, added, removed or changed, and for a changed image every layer whose digest \
            differs is listed with its position and the recipe step that made it. Manifests and configs are read \
            from the local store when it has them, else from the registry.

              kiln diff 1.1.0 1.2.0
            """)

    @Argument(help: "The older release.") var a: String
    @Argument(help: "The newer release.") var b: String
    @Option(
        name: .long, help: "REGISTRY[/NAMESPACE] to read releases and manifests from (default: where B was pushed).")
    var to: String?
    @OptionGroup var releaseOptions: ReleaseOptions
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    /// Both name release files: checked before anything is opened.
    func validate() throws {
        try OCITag.check(a)
        try OCITag.check(b)
    }

    func run() async throws {
        let old = try await loadRelease(a, releaseOptions, to: to, flags: registryFlags)
        let new = try await loadRelease(b, releaseOptions, to: to, flags: registryFlags)
        let target =
            try to.map(RegistryTarget.init(parsing:))
            ?? RegistryTarget(registry: new.registry, namespace: new.namespace)
        let layout =
            FileManager.default.fileExists(atPath: storeOptions.path + "/index.json")
            ? try OCILayout(root: storeOptions.path, create: false) : nil
        let diff = try await withRegistry(target.registry, registryFlags) { client in
            try await ReleaseDiff.compare(old, new) { repository in
                StoreFirst(layout, then: RegistryRepository(client: client, repository: repository))
            }
        }
        if output.json { return try Output.json(diff) }
        Output.line("release \(a) → \(b)")
        Output.line(diff.text)
    }
}
