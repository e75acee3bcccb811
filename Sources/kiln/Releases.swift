import ArgumentParser
import Foundation
import KilnRelease

struct Releases: ParsableCommand, LoggedCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the releases recorded in releases/.",
        discussion: "One line per releases/VERSION.json, oldest first: version, date, image count, source revision.")

    @OptionGroup var releaseOptions: ReleaseOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var log: LogOptions

    struct Row: Encodable {
        var version: String
        var created: String
        var imageCount: Int
        var revision: String?
        var registry: String
        var namespace: String
        var movingTags: [String]
    }

    struct Report: Encodable {
        var releases: [Row]
    }

    func run() throws {
        let rows = try releaseOptions.directory.all().map {
            Row(
                version: $0.version, created: $0.created, imageCount: $0.images.count, revision: $0.revision,
                registry: $0.registry, namespace: $0.namespace, movingTags: $0.movingTags)
        }
        if output.json { return try Output.json(Report(releases: rows)) }
        if rows.isEmpty {
            Output.line("no releases in \(releaseOptions.releases)/ yet: see `kiln release --help`")
            return
        }
        let width = max(rows.map(\.version.count).max() ?? 0, 7)
        Output.line(
            "VERSION".padding(toLength: width + 2, withPad: " ", startingAt: 0)
                + "CREATED               IMAGES  REVISION")
        for row in rows {
            Output.line(
                row.version.padding(toLength: width + 2, withPad: " ", startingAt: 0)
                    + row.created.padding(toLength: 22, withPad: " ", startingAt: 0)
                    + String(row.imageCount).padding(toLength: 8, withPad: " ", startingAt: 0)
                    + (row.revision.map { String($0.prefix(12)) } ?? "-"))
        }
    }
}
