import ArgumentParser
import Foundation
import KilnOCI
import KilnRegistry
import KilnRelease

struct Rollback: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Point moving tags (e.g. stable) back at an earlier release, only if all of it is still there.",
        discussion: """
            Reads releases/VERSION.json (or, when there is no such file, the release-VERSION artifact in \
            REGISTRY/NAMESPACE/kiln-releases). Then checks that the registry still has every manifest of the \
            release (HEAD by digest) and every config and layer they name (HEAD each blob). Only if everything \
            is there does it move each tag, by fetching the manifest by digest and PUTting the same bytes under \
            the tag; if anything is missing it lists what and changes nothing. The tags moved are --tag, else the \
            release's own moving tags, else stable. Rolling "back" to a newer release rolls forward.

              kiln rollback 1.2.0 --dry-run
              kiln rollback 1.2.0 --to registry.example.com/komodo --tag stable
            """)

    @Argument(help: "The release to point the tags at.") var version: String
    @Option(name: .long, help: "REGISTRY[/NAMESPACE] (default: where the release was pushed).") var to: String?
    @Option(
        name: .customLong("tag"), help: "A tag to move (repeatable; default: the release's moving tags, else stable).")
    var tags: [String] = []
    @Flag(name: .customLong("dry-run"), help: "Check and show the moves; change nothing.") var dryRun = false
    @OptionGroup var releaseOptions: ReleaseOptions
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var version: String
        var dryRun: Bool
        var moves: [TagMove]
    }

    /// VERSION names a file and an artifact tag: checked before anything is opened.
    func validate() throws { try OCITag.check(version) }

    func run() async throws {
        let document = try await loadRelease(version, releaseOptions, to: to, flags: registryFlags)
        let target =
            try to.map(RegistryTarget.init(parsing:))
            ?? RegistryTarget(registry: document.registry, namespace: document.namespace)
        let moving = !tags.isEmpty ? tags : (!document.movingTags.isEmpty ? document.movingTags : ["stable"])
        let reporter = TransferReporter(quiet: output.json)
        let moves = try await withRegistry(target.registry, registryFlags) { client in
            let releaser = Releaser(client: client, target: target, events: reporter.handle)
            let moves = try await releaser.planRollback(document, tags: moving)
            if !dryRun { try await releaser.apply(moves) }
            return moves
        }
        if output.json { return try Output.json(Report(version: version, dryRun: dryRun, moves: moves)) }
        for move in moves { Output.line((dryRun && move.changes ? "would move " : "") + move.line) }
        let changed = moves.filter(\.changes).count
        Output.status(
            dryRun
                ? "dry run: \(changed) tag\(changed == 1 ? "" : "s") would move to release \(version); nothing changed"
                : "moved \(changed) tag\(changed == 1 ? "" : "s") to release \(version)")
    }
}
