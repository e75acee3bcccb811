import ArgumentParser
import Foundation
import KilnHTTP
import KilnRegistry
import KilnRelease

struct Verify: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rebuild an image from the recipes and check the registry serves exactly those bytes.",
        discussion: """
            REF is REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:…. The recipe named like the repository's last \
            component is rebuilt (with its bases) from --recipes into a temporary store, using the version, \
            revision and creation time the published image records in its annotations, and its digest is \
            compared with the registry's. On a mismatch the first differing layer is named (position and recipe \
            layer) and its files are compared entry by entry (path, type, size, mode, owner, content hash) with \
            the published layer, downloaded and verified. Exits 1 on a mismatch.

              kiln verify registry.example.com/komodo/komodod:0.9.0
            """)

    @Argument(help: "The published image.") var reference: String
    @Option(name: .long, help: "Recipe files or directories to rebuild from (default: recipes).")
    var recipes: [String] = []
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let ref: Reference
        do { ref = try Reference(parsing: reference) } catch { throw ValidationError("\(error)") }
        let scratch = FileManager.default.temporaryDirectory.path + "/kiln-verify-\(UUID().uuidString.lowercased())"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let flags = registryFlags
        let json = output.json
        // The rebuild takes seconds: every layer is a line (a live one on a terminal while it is written).
        let reporter = ProgressReporter()
        if !json { Output.step("verify: rebuilding \(ref.repository) from the recipes in a scratch store") }
        let report = try await withRegistry(ref.registry, registryFlags) { client in
            try await Verifier(
                client: client,
                registryOptions: RegistryOptions(insecure: Set(flags.insecure), caFile: flags.caFile, jobs: flags.jobs),
                httpOptions: HTTPOptions(caFile: flags.caFile),
                events: { event in
                    guard !json else { return }
                    if case .imageTagged(_, let references, let digest) = event {
                        Output.endProgress()
                        Output.status("rebuilt \(references.joined(separator: ", ")) → \(digest)")
                    } else {
                        reporter.handle(event)
                    }
                }
            ).verify(ref, recipes: recipes.isEmpty ? ["recipes"] : recipes, scratch: scratch)
        }
        if json { try Output.json(report) } else { Output.line(report.text) }
        if !report.matches { throw ExitCode(1) }
    }
}
