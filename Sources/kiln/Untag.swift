import ArgumentParser
import Foundation
import KilnStore

struct Untag: ParsableCommand, LoggedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove tags from the local store (like `podman untag`), so `kiln gc` can free their blobs.",
        discussion: """
            Only the names go (and the SBOM entries of images no tag names any more): blobs stay until \
            `kiln gc`, which keeps whatever another tag or a release still needs. Each REF is NAME:TAG as `kiln images` lists it; an unknown one is \
            an error and nothing is removed.

              kiln untag komodod:0.8.0 && kiln gc
            """)

    @Argument(help: "Images as NAME:TAG.") var references: [String]
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var log: LogOptions

    struct Report: Encodable {
        var untagged: [String]
    }

    func run() throws {
        guard !references.isEmpty else { throw ValidationError("name at least one image as NAME:TAG") }
        // No store, or an image it does not have: the command cannot do its work (2), nothing is removed.
        let layout = try OCILayout(root: storeOptions.path, create: false)
        let known = try layout.tags().map(\.reference)
        for reference in references where !known.contains(reference) {
            throw StoreError.unknownTag(reference: reference, layout: layout.root, known: known)
        }
        for reference in references { try layout.untag(reference) }
        try layout.removeOrphanReferrers()
        if output.json { return try Output.json(Report(untagged: references)) }
        for reference in references { Output.line("untagged \(reference)") }
    }
}
