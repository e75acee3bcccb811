import ArgumentParser
import Foundation
import KilnHTTP
import KilnOCI
import KilnRegistry
import KilnRelease
import KilnStore
import Synchronization

/// Flags shared by the commands that talk to registries.
struct RegistryFlags: ParsableArguments {
    @Option(
        name: .long, help: "Allow plain HTTP to this registry (host[:port]); repeatable. Loopback is always allowed.")
    var insecure: [String] = []

    @Option(name: .customLong("ca-file"), help: "Also trust the certificate authorities in this PEM file.")
    var caFile: String?

    @Option(name: .long, help: "Parallel blob transfers.")
    var jobs: Int = 4

    @Option(
        name: .long,
        help: "Seconds a registry may send nothing before the transfer is abandoned (default 60, or KILN_TIMEOUT).")
    var timeout: Double?

    @OptionGroup var log: LogOptions

    var httpOptions: HTTPOptions {
        HTTPOptions(caFile: caFile, idleTimeout: timeout.flatMap { $0 > 0 ? $0 : nil }, logger: log.logger)
    }

    func client(for registry: String) throws -> (RegistryClient, HTTPTransport) {
        let transport = try HTTPTransport(options: httpOptions)
        // Every command remembers where it saw blobs ($KILN_CACHE_DIR/blob-locations.json), so later pushes and
        // copies mount them instead of uploading them again.
        let options = RegistryOptions(
            insecure: Set(insecure), caFile: caFile, jobs: jobs, blobLocationCache: BlobLocationCache())
        return (RegistryClient(registry: registry, transport: transport, options: options), transport)
    }
}

/// Per-blob progress: a live line on a terminal, one plain line per blob in logs.
final class TransferReporter: Sendable {
    /// When the live line was last drawn and which blobs were announced; also keeps two events from printing
    /// at once.
    private let drawn = Mutex<(lastDraw: Date, started: Set<Digest>)>((.distantPast, []))
    let quiet: Bool

    init(quiet: Bool) { self.quiet = quiet }

    func handle(_ event: TransferEvent) {
        guard !quiet else { return }
        drawn.withLock { state in
            switch event {
            case .blobSkipped(let repo, let digest, let size):
                Output.status("  \(repo) \(Output.short(digest)): already there (\(Output.bytes(size)))")
            case .blobMounted(let repo, let digest, let from, let size):
                Output.status("  \(repo) \(Output.short(digest)): mounted from \(from) (\(Output.bytes(size)))")
            case .mountRefused(let repo, let digest, let from):
                Output.status("  \(repo) \(Output.short(digest)): not in \(from) any more (a stale location, dropped)")
            case .blobProgress(let repo, let digest, let done, let total):
                // In a log, each blob in flight is a line when it starts (its end is the uploaded/downloaded line).
                if !Output.isTerminal, state.started.insert(digest).inserted {
                    Output.status("  \(repo) \(Output.short(digest)): transferring \(Output.bytes(total)) …")
                }
                guard Date().timeIntervalSince(state.lastDraw) > 0.2, total > 0 else { return }
                state.lastDraw = Date()
                Output.progress("  \(repo) \(Output.short(digest)): \(Output.bytes(done)) / \(Output.bytes(total))")
            case .blobUploaded(let repo, let digest, let size):
                Output.endProgress()
                Output.status("  \(repo) \(Output.short(digest)): uploaded \(Output.bytes(size))")
            case .blobDownloaded(let repo, let digest, let size):
                Output.endProgress()
                Output.status("  \(repo) \(Output.short(digest)): downloaded \(Output.bytes(size))")
            case .manifestPushed(let repo, let reference):
                if !reference.hasPrefix("sha256:") { Output.status("  \(repo):\(reference) tagged") }
            }
        }
    }
}

struct Pull: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch an image from a registry into the local store.",
        discussion: """
            REF is REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:… (a name without registry means docker.io). Every \
            digest and size is verified before anything is stored. From a multi-platform image only --platform \
            (default: this machine's) is fetched. The image is tagged in the store as given, or with --tag. \
            Docker manifests and manifest lists are stored with OCI media types (as skopeo and crane write a \
            layout), so every OCI tool reads the store; the registry's digest stays recorded on the tag. When the \
            stored digests are the published ones, the image's SBOM and its cosign signatures and attestations \
            (sha256-<hex>.sig, .att) come along: `kiln verify NAME:TAG --key PUB --store DIR` checks them there.
            """)

    @Argument(help: "The image reference.") var reference: String
    @Option(name: .long, help: "Platform(s) to fetch from a multi-platform image, e.g. linux/amd64.")
    var platform: [String] = []
    @Option(name: .long, help: "Tag it in the store as NAME:TAG instead of the reference.") var tag: String?
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var reference: String
        var digest: String
        var mediaType: String
        var storedAs: String
        /// The digest the registry served; `digest` differs when a docker document was stored as OCI.
        var publishedDigest: String
    }

    func run() async throws {
        let ref: Reference
        do { ref = try Reference(parsing: reference) } catch { throw ValidationError("\(error)") }
        let platforms = try platform.map { text -> Platform in
            guard let p = Platform(parsing: text) else {
                throw ValidationError("'\(text)' is not a platform: write os/arch")
            }
            return p
        }
        let layout = try OCILayout(root: storeOptions.path)
        let (client, transport) = try registryFlags.client(for: ref.registry)
        let descriptor: Descriptor
        do {
            descriptor = try await Puller(
                layout: layout, client: client, events: TransferReporter(quiet: output.json).handle
            )
            .pull(ref, platforms: platforms.isEmpty ? [Platform.host] : platforms)
        } catch {
            await transport.shutdown()
            throw error
        }
        await transport.shutdown()
        let name =
            tag
            ?? "\(ref.registry)/\(ref.repository):\(ref.tag ?? ref.digest.map { "sha256-\($0.encoded)" } ?? "latest")"
        try layout.tag(descriptor, as: name)
        if output.json {
            return try Output.json(
                Report(
                    reference: ref.description, digest: descriptor.digest.description, mediaType: descriptor.mediaType,
                    storedAs: name,
                    publishedDigest: descriptor.annotations?[OCIConversion.sourceDigestKey]
                        ?? descriptor.digest.description))
        }
        Output.line("\(name)  \(descriptor.digest)")
    }
}
