import ArgumentParser
import Foundation
import KilnHTTP
import KilnRegistry
import KilnRelease
import KilnSign
import KilnStore

struct Verify: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Rebuild an image from the recipes and check the registry serves exactly those bytes; or, with --key, check its signatures.",
        discussion: """
            REF is REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:…. The recipe named like the repository's last \
            component is rebuilt (with its bases) from --recipes into a temporary store, using the version, \
            revision and creation time the published image records in its annotations, and its digest is \
            compared with the registry's. On a mismatch the first differing layer is named (position and recipe \
            layer) and its files are compared entry by entry (path, type, size, mode, owner, content hash) with \
            the published layer, downloaded and verified. Exits 1 on a mismatch.

            With --key PUB (repeatable: any of the keys will do) nothing is rebuilt: the image's cosign signatures \
            (tag sha256-<hex>.sig) are checked instead, as cosign verify --key and a containers policy.json \
            (sigstoreSigned) check them, so signatures made by cosign or skopeo with a compatible key count too. \
            The image and, for a multi-platform image, each platform manifest is checked. Each image manifest \
            must also carry its build provenance (tag sha256-<hex>.att, as release --sign-key attaches it): a \
            DSSE envelope signed by the key, of an in-toto statement with a SLSA provenance v1 predicate whose \
            subject is that manifest's digest. Exits 1 when the image has no valid signature, a platform \
            manifest carries only bad ones, or a provenance attestation is missing, signed by another key or \
            names another digest. --signatures-only skips the provenance (images other tools signed). With \
            --key, a NAME:TAG without a registry host, or any name given with --store, is checked in the store \
            with the signatures and attestations `kiln pull` kept.

              kiln verify registry.example.com/komodo/komodod:0.9.0
              kiln verify registry.example.com/komodo/komodod:0.9.0 --key release.pub
              kiln verify komodod:0.9.0 --key release.pub --store pulled
            """)

    @Argument(help: "The published image.") var reference: String
    @Option(name: .long, help: "Recipe files or directories to rebuild from (default: recipes).")
    var recipes: [String] = []
    @Option(name: .long, help: "Check the image's signatures with this public key (PEM) instead of rebuilding.")
    var key: [String] = []
    @Flag(name: .long, help: "With --key: check the signatures only, not the build provenance attestations.")
    var signaturesOnly = false
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    func run() async throws {
        // A name without a registry host, or any name with an explicit --store (a pull stores REGISTRY/NAME:TAG).
        if !key.isEmpty && (storeOptions.store != nil || !SBOMCommand.isRemote(reference)) {
            return try await verifyStored()
        }
        let ref: Reference
        do { ref = try Reference(parsing: reference) } catch { throw ValidationError("\(error)") }
        if !key.isEmpty { return try await verifySignatures(ref) }
        if signaturesOnly { throw ValidationError("--signatures-only goes with --key") }
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
                httpOptions: HTTPOptions(caFile: flags.caFile, logger: flags.log.logger),
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

    /// `--key`: the signature check.
    func verifySignatures(_ ref: Reference) async throws {
        let keys = try key.map { try PublicKey.load(path: $0) }
        let report = try await withRegistry(ref.registry, registryFlags) { client in
            try await SignatureVerifier(client: client, keys: keys, provenance: !signaturesOnly).verify(ref)
        }
        try show(report)
    }

    /// `--key` of an image in the store (pulled with its attachments).
    func verifyStored() async throws {
        let keys = try key.map { try PublicKey.load(path: $0) }
        let layout = try OCILayout(root: storeOptions.path, create: false)
        try show(
            try await SignatureVerifier(layout: layout, keys: keys, provenance: !signaturesOnly).verify(
                stored: reference))
    }

    func show(_ report: SignatureVerifier.Report) throws {
        if output.json { try Output.json(report) } else { Output.line(report.text) }
        if !report.verified { throw ExitCode(ExitStatus.differs) }
    }
}
