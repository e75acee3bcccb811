import ArgumentParser
import Foundation
import KilnOCI
import KilnRelease
import KilnStore

struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove blobs from the local store that no tag references.",
        discussion: """
            Walks every tag in the store's index.json and deletes the blobs none of them reach, holding the store lock so a concurrent \
            `kiln build` cannot lose work. Blobs younger than --grace (a build may not have tagged them yet) \
            are kept, and so are the images of the releases recorded in releases/*.json (--releases), even \
            untagged. Use --dry-run to see what would go.
            """)

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var releaseOptions: ReleaseOptions
    @Flag(name: .long, help: "Show what would be removed, remove nothing.") var dryRun = false
    @Option(name: .long, help: "Keep untagged blobs younger than this many seconds.") var grace: Double = 3600

    struct Report: Encodable {
        var dryRun: Bool
        var removed: [String]
        /// Bytes freed (or, with --dry-run, that would be).
        var size: Int64
    }

    func run() throws {
        let layout = try OCILayout(root: storeOptions.path, create: false)
        let garbage = try layout.collectGarbage(
            extraRoots: try releaseOptions.directory.roots(in: layout), dryRun: dryRun, graceSeconds: grace)
        let bytes = garbage.reduce(0) { $0 + $1.size }
        if output.json {
            return try Output.json(Report(dryRun: dryRun, removed: garbage.map(\.digest.description), size: bytes))
        }
        for item in garbage {
            Output.line("\(dryRun ? "would remove" : "removed") \(item.digest)  \(Output.bytes(item.size))")
        }
        Output.line("\(dryRun ? "would free" : "freed") \(Output.bytes(bytes)) in \(garbage.count) blobs")
    }
}
