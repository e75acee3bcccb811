import ArgumentParser
import Foundation
import KilnStore

struct Fsck: ParsableCommand, LoggedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the store: re-hash every blob and name the bad ones and the tags that reach them.",
        discussion: """
            Every file under blobs/ is read in full and hashed; a blob whose content does not match its name \
            (bit rot, a tampered file) or that a tag needs but is missing is listed with the tags whose image \
            reaches it. Exit status 1 when anything is wrong. fsck only reads: to repair, delete the named blob \
            files and rebuild or pull the images those tags name.
            """)

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var log: LogOptions

    func run() throws {
        let layout = try OCILayout(root: storeOptions.path, create: false)
        let report = try layout.fsck()
        if output.json {
            try Output.json(report)
        } else if report.isClean {
            Output.line("\(layout.root): \(report.blobsChecked) blobs checked, all match their digests")
        } else {
            for problem in report.problems {
                let tags =
                    problem.tags.isEmpty ? "no tag reaches it" : "reached by " + problem.tags.joined(separator: ", ")
                Output.line("\(problem.digest) (\(problem.path)): \(problem.problem); \(tags)")
            }
            Output.line(
                "\(report.problems.count) bad of \(report.blobsChecked) blobs checked: delete the bad files, then "
                    + "rebuild or pull the images named")
        }
        if !report.isClean { throw ExitCode(1) }
    }
}
