import ArgumentParser
import Foundation
import KilnOCI
import KilnRelease
import KilnStore

struct Export: AsyncParsableCommand, LoggedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write one image from the store as an OCI or docker archive (tar).",
        discussion: """
            --format oci writes an OCI image layout as a tar (oci-layout, index.json with the one image, \
            blobs/sha256/…). --format docker adds docker's manifest.json to the same layout, the combined format \
            that `podman load` and `docker load` read. The bytes depend only on the image: two exports of the same \
            image are identical files.

              kiln export komodod:0.9.0 --format docker -o komodod.tar && podman load -i komodod.tar
              kiln export komodod:0.9.0 --format oci -o - | gzip > komodod.oci.tar.gz
            """)

    @Argument(help: "The image, as NAME:TAG.") var reference: String
    @Option(name: .long, help: "oci or docker.") var format: ImageArchive.Format = .oci
    @Option(name: .shortAndLong, help: "The archive to write; - for standard output.") var output: String
    @Option(
        name: .long, help: "For a docker archive of a multi-platform image: which platform (default: this machine's).")
    var platform: String?
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var log: LogOptions

    struct Report: Encodable {
        var reference: String
        var path: String
        var digest: String
        var size: Int64
    }

    func validate() throws {
        if outputOptions.json && output == "-" {
            throw ValidationError("--json needs -o FILE: with -o - standard output carries the archive")
        }
    }

    func run() async throws {
        let layout = try OCILayout(root: storeOptions.path, create: false)
        var chosen = Platform.host
        if let platform {
            guard let parsed = Platform(parsing: platform) else {
                throw ValidationError("'\(platform)' is not a platform: write os/arch")
            }
            chosen = parsed
        }
        let progress = ByteProgress(label: "exporting \(reference)")
        guard output == "-" else {
            let result = try await ImageArchive.write(
                layout: layout, reference: reference, format: format, to: output, platform: chosen,
                progress: progress.report)
            Output.endProgress()
            Output.status("wrote \(output): \(Output.bytes(result.size)), \(result.digest)")
            if outputOptions.json {
                try Output.json(
                    Report(reference: reference, path: output, digest: result.digest.description, size: result.size))
            }
            return
        }
        let temp = FileManager.default.temporaryDirectory.path + "/kiln-export-\(UUID().uuidString.lowercased()).tar"
        defer { try? FileManager.default.removeItem(atPath: temp) }
        try await ImageArchive.write(
            layout: layout, reference: reference, format: format, to: temp, platform: chosen, progress: progress.report)
        Output.endProgress()
        guard let handle = FileHandle(forReadingAtPath: temp) else {
            throw StoreError.io(path: temp, operation: "read the staged archive", detail: "it cannot be opened")
        }
        defer { try? handle.close() }
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            try FileHandle.standardOutput.write(contentsOf: chunk)
        }
    }
}

extension ImageArchive.Format: ExpressibleByArgument {}
