import ArgumentParser
import Foundation
import KilnOCI
import KilnRegistry

struct Copy: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy an image between registries by digest (like `crane copy`, `skopeo copy --all`).",
        discussion: """
            Promotion from test to production: SRC's manifest or index and everything it names are copied \
            byte for byte, so DST serves the same digest (every platform of an index). Blobs stream from \
            registry to registry in ranged pieces (two held at most; no temporary file). Within one registry \
            blobs are mounted from SRC's repository, not sent again; across registries from any repository of \
            DST's registry an earlier push or copy saw them in ($KILN_CACHE_DIR/blob-locations.json); blobs DST \
            has are skipped. The image's \
            SBOMs go along, and so do its cosign signatures and attestations (sha256-<hex>.sig and .att of each \
            manifest; a destination's own attachment that holds signatures the source's lacks is left as it \
            is). DST without a tag takes SRC's tag; DST@sha256:… must be SRC's digest.

              kiln copy test.example.com/komodo/komodod:0.9.0 prod.example.com/komodo/komodod
              kiln copy 127.0.0.1:5000/test/app@sha256:… 127.0.0.1:5000/prod/app:stable --json
            """)

    @Argument(help: "The image to copy, as REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:….") var source: String
    @Argument(help: "Where to, as REGISTRY/NAME[:TAG].") var destination: String
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var source: String
        var destination: String
        var digest: String
        var mediaType: String
        var blobsWritten: Int
        var referrers: [Descriptor]
        /// cosign signatures and attestations that came along, by tag (`sha256-<hex>.sig`, `.att`).
        var attachments: [String]?
    }

    func run() async throws {
        let dst: Reference
        do { dst = try Reference(parsing: destination) } catch {
            throw ValidationError("\(error)")
        }
        let reporter = TransferReporter(quiet: output.json)
        if !output.json { Output.step("copying \(source) → \(destination)") }
        let (dstClient, dstTransport) = try registryFlags.client(for: dst.registry)
        let result: RemoteCopy.Result
        do {
            result = try await registryFlags.with(source) { src, srcClient in
                var to = dst
                if !Self.hasTag(destination) { to.tag = nil }
                return try await RemoteCopy(source: srcClient, destination: dstClient, events: reporter.handle)
                    .copy(src, to: to)
            }
        } catch {
            await dstTransport.shutdown()
            throw error
        }
        await dstTransport.shutdown()
        let report = Report(
            source: result.source, destination: result.destination, digest: result.digest.description,
            mediaType: result.mediaType, blobsWritten: result.blobsWritten,
            referrers: result.referrers, attachments: result.attachments)
        if output.json { return try Output.json(report) }
        Output.line(report.destination)
    }

    /// Whether a reference names a tag (a `:` after the last `/`).
    static func hasTag(_ text: String) -> Bool {
        let name = text.split(separator: "@").first.map(String.init) ?? text
        guard let colon = name.lastIndex(of: ":") else { return false }
        return name.lastIndex(of: "/").map { colon > $0 } ?? true
    }
}

struct TagCommand: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        commandName: "tag",
        abstract: "Add a tag to an image in a registry (like `crane tag`), without pulling it.",
        discussion: """
            NEWTAG is put on the manifest REF names, in REF's repository: the same bytes, so the same digest.

              kiln tag registry.example.com/komodo/komodod:0.9.0 stable
            """)

    @Argument(help: "The image, as REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:….") var reference: String
    @Argument(help: "The new tag.") var newTag: String
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var reference: String
        var digest: String
    }

    func run() async throws {
        try OCITag.check(newTag, as: "tag")
        let report = try await registryFlags.with(reference) { ref, client in
            let (data, descriptor) = try await client.manifest(ref.repository, ref.identifier)
            try await client.putManifest(ref.repository, newTag, data: data, mediaType: descriptor.mediaType)
            return Report(
                reference: "\(ref.registry)/\(ref.repository):\(newTag)", digest: descriptor.digest.description)
        }
        if output.json { return try Output.json(report) }
        Output.line("\(report.reference)  \(report.digest)")
    }
}
