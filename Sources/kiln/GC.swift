import ArgumentParser
import Foundation
import KilnOCI
import KilnRelease
import KilnStore

struct GC: ParsableCommand, LoggedCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove blobs from the local store that no tag references.",
        discussion: """
            Walks every tag in the store's index.json and deletes the blobs none of them reach, holding the store lock so a concurrent \
            `kiln build` cannot lose work. Blobs modified less than --grace seconds ago (default 3600: a tool \
            that registers no build roots may not have tagged them yet) are kept, and gc says how much it kept \
            that way; --grace 0 frees them at once (a running kiln build is protected by its roots anyway). The \
            images of the releases recorded in releases/*.json (--releases) are kept too, even untagged. Use \
            --dry-run to see what would go.
            """)

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var releaseOptions: ReleaseOptions
    @OptionGroup var log: LogOptions
    @Flag(name: .long, help: "Show what would be removed, remove nothing.") var dryRun = false
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Keep unreferenced blobs modified less than this many seconds ago (default: 3600; 0 frees everything "
                + "unreferenced at once).", valueName: "seconds"))
    var grace: Double = 3600

    struct Report: Encodable {
        var dryRun: Bool
        var removed: [String]
        /// Bytes freed (or, with --dry-run, that would be).
        var size: Int64
        /// Unreferenced blobs kept only because they are younger than `graceSeconds`.
        var kept: Kept
    }

    struct Kept: Encodable {
        var graceSeconds: Double
        var blobs: Int
        var size: Int64
    }

    func validate() throws {
        guard grace >= 0, grace.isFinite else { throw ValidationError("--grace must be 0 or more seconds") }
    }

    func run() throws {
        let layout = try OCILayout(root: storeOptions.path, create: false)
        let collection = try layout.collect(
            extraRoots: try releaseOptions.directory.roots(in: layout), dryRun: dryRun, graceSeconds: grace,
            logger: log.logger)
        let garbage = collection.removed
        let bytes = garbage.reduce(0) { $0 + $1.size }
        let kept = Kept(
            graceSeconds: grace, blobs: collection.keptForGrace.count,
            size: collection.keptForGrace.reduce(0) { $0 + $1.size })
        if output.json {
            return try Output.json(
                Report(dryRun: dryRun, removed: garbage.map(\.digest.description), size: bytes, kept: kept))
        }
        for item in garbage {
            Output.line("\(dryRun ? "would remove" : "removed") \(item.digest)  \(Output.bytes(item.size))")
        }
        Output.line("\(dryRun ? "would free" : "freed") \(Output.bytes(bytes)) in \(garbage.count) blobs")
        if kept.blobs > 0 {
            Output.line(
                "kept \(Output.bytes(kept.size)) in \(kept.blobs) unreferenced blob\(kept.blobs == 1 ? "" : "s") younger than "
                    + "--grace \(Int(grace)) s (a build may not have tagged them yet); `kiln gc --grace 0` frees them now"
            )
        }
    }
}
