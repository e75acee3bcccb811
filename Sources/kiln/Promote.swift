import ArgumentParser
import Foundation
import KilnRegistry
import KilnRelease
import KilnSign

struct Promote: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy a signed release from one registry namespace to another, after checking every signature.",
        discussion: """
            Reads release-VERSION from FROM (REGISTRY/NAMESPACE), checks each image's cosign signatures there \
            with --key (repeatable: any of the keys will do), and only when every image passes copies each by \
            digest to TO, tagged VERSION, with its SBOMs, signatures and attestations, then records the release \
            at TO (release-VERSION in TO's kiln-releases), so `kiln rollback VERSION --to TO` and `kiln \
            deploy-refs VERSION --to TO` work there. Exits 1, copying nothing, when a signature is missing or bad. \
            The signatures keep naming FROM's repositories: a policy.json at TO maps them (remapIdentity).

              kiln promote 1.2.0 --from test.example.com/komodo --to prod.example.com/komodo --key release.pub
            """)

    @Argument(help: "The release.") var version: String
    @Option(name: .long, help: "REGISTRY[/NAMESPACE] the release was published to.") var from: String
    @Option(name: .long, help: "REGISTRY[/NAMESPACE] to promote it to.") var to: String
    @Option(name: .long, help: "A public key whose signatures are accepted (PEM).") var key: [String]
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if key.isEmpty { throw ValidationError("give --key: a release is promoted only when its signatures verify") }
    }

    func run() async throws {
        let source = try RegistryTarget(parsing: from)
        let target = try RegistryTarget(parsing: to)
        let keys = try key.map { try PublicKey.load(path: $0) }
        let reporter = TransferReporter(quiet: output.json)
        let result = try await withRegistry(source.registry, registryFlags) { sourceClient in
            try await withRegistry(target.registry, registryFlags) { destinationClient in
                try await Promoter(
                    source: sourceClient, destination: destinationClient, from: source, to: target, keys: keys,
                    events: reporter.handle
                ).promote(version)
            }
        }
        if output.json {
            try Output.json(result)
        } else {
            for report in result.verified where !report.verified { Output.line(report.text) }
            for copied in result.copied { Output.line(copied.destination) }
            if result.promoted {
                Output.status("promoted \(version): \(result.copied.count) image(s) from \(from) to \(to)")
            } else {
                Output.status(
                    "not promoted: \(result.verified.filter { !$0.verified }.count) image(s) failed the check")
            }
        }
        if !result.promoted { throw ExitCode(ExitStatus.differs) }
    }
}
