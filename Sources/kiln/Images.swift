import ArgumentParser
import Foundation
import KilnOCI
import KilnStore

struct Images: ParsableCommand, LoggedCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the images in the local store with their tags and digests.",
        discussion: """
            Each line is NAME:TAG, the digest a registry will serve for it (pin this), and the total compressed \
            size. The digest is that of the manifest (one platform) or of the image index (several).
            """)

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var log: LogOptions

    struct Row: Encodable {
        var reference: String
        var name: String
        var tag: String
        var digest: String
        var mediaType: String
        var size: Int64
        var platforms: [String]
    }

    struct Report: Encodable {
        var images: [Row]
    }

    func run() throws {
        // Listing never creates a store: where none exists, it says so and exits 2, as every command that reads
        // the store does.
        let layout = try OCILayout(root: storeOptions.path, create: false)
        let rows = try layout.tags().map { tagged in
            let images = try layout.images(for: tagged.descriptor)
            return Row(
                reference: tagged.reference, name: tagged.name, tag: tagged.tag,
                digest: tagged.descriptor.digest.description, mediaType: tagged.descriptor.mediaType,
                size: images.reduce(0) { $0 + $1.totalSize }, platforms: images.map { $0.config.platform.description })
        }
        if output.json { return try Output.json(Report(images: rows)) }
        if rows.isEmpty {
            Output.line("no images in \(layout.root) yet: run `kiln build` first")
            return
        }
        let width = max(rows.map(\.reference.count).max() ?? 0, 9)
        Output.line(
            "REFERENCE".padding(toLength: width + 2, withPad: " ", startingAt: 0)
                + "DIGEST".padding(toLength: 73, withPad: " ", startingAt: 0) + "SIZE")
        for row in rows {
            Output.line(
                row.reference.padding(toLength: width + 2, withPad: " ", startingAt: 0)
                    + row.digest.padding(toLength: 73, withPad: " ", startingAt: 0) + Output.bytes(row.size))
        }
    }
}
