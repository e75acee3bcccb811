import ArgumentParser
import Foundation
import KilnHTTP
import KilnOCI
import KilnRegistry
import KilnRelease
import KilnStore

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

    var httpOptions: HTTPOptions { HTTPOptions(caFile: caFile, idleTimeout: timeout.flatMap { $0 > 0 ? $0 : nil }) }

    func client(for registry: String) throws -> (RegistryClient, HTTPTransport) {
        let transport = try HTTPTransport(options: httpOptions)
        let options = RegistryOptions(insecure: Set(insecure), caFile: caFile, jobs: jobs)
        return (RegistryClient(registry: registry, transport: transport, options: options), transport)
    }
}

/// Per-blob progress: a live line on a terminal, one plain line per blob in logs.
final class TransferReporter: @unchecked Sendable {
    private let lock = NSLock()
    private var lastDraw = Date.distantPast
    let quiet: Bool

    init(quiet: Bool) { self.quiet = quiet }

    func handle(_ event: TransferEvent) {
        guard !quiet else { return }
        lock.lock()
        defer { lock.unlock() }
        switch event {
        case .blobSkipped(let repo, let digest, let size):
            Output.status("  \(repo) \(Output.short(digest)): already there (\(Output.bytes(size)))")
        case .blobMounted(let repo, let digest, let from, let size):
            Output.status("  \(repo) \(Output.short(digest)): mounted from \(from) (\(Output.bytes(size)))")
        case .blobProgress(let repo, let digest, let done, let total):
            guard Date().timeIntervalSince(lastDraw) > 0.2, total > 0 else { return }
            lastDraw = Date()
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

struct Push: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish images from the local store to a registry.",
        discussion: """
            Pushes every tag of the named images (all images when none is named) to REGISTRY/NAMESPACE/NAME. \
            Blobs the registry has are skipped, shared layers are mounted across repositories, large layers go \
            up in resumable chunks; manifests follow by digest and tags come last, so a tag never points at \
            something incomplete. Each image is printed as REGISTRY/REPOSITORY@sha256:…: pin that.

            Credentials come from KILN_REGISTRY_USERNAME/KILN_REGISTRY_PASSWORD (optionally limited to \
            KILN_REGISTRY_HOST), else docker's config.json (`kiln login`, credHelpers, credsStore).

              kiln push --to registry.example.com/komodo
              kiln push komodod:0.9.0 --to 127.0.0.1:5000/test --json
            """)

    @Argument(help: "Images as NAME or NAME:TAG (default: all).") var images: [String] = []
    @Option(name: .long, help: "REGISTRY[/NAMESPACE] to push to.") var to: String
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let target: RegistryTarget
        do { target = try RegistryTarget(parsing: to) } catch { throw ValidationError("\(error)") }
        let layout = try OCILayout(root: storeOptions.path)
        var items: [Pusher.Item] = []
        let tags = try layout.tags().filter { tagged in
            images.isEmpty || images.contains(tagged.reference) || images.contains(tagged.name)
        }
        for image in images where !tags.contains(where: { $0.reference == image || $0.name == image }) {
            throw ValidationError("no image '\(image)' in \(layout.root): see `kiln images`")
        }
        for (name, group) in Dictionary(grouping: tags, by: \.name).sorted(by: { $0.key < $1.key }) {
            for (digest, same) in Dictionary(grouping: group, by: \.descriptor.digest).sorted(by: { $0.key < $1.key }) {
                var descriptor = same[0].descriptor
                descriptor.annotations = nil
                _ = digest
                items.append(
                    .init(repository: target.repository(name), descriptor: descriptor, tags: same.map(\.tag).sorted()))
            }
        }
        let (client, transport) = try registryFlags.client(for: target.registry)
        let reporter = TransferReporter(quiet: output.json)
        let started = Date()
        let pushed: [PushedImage]
        do {
            pushed = try await Pusher(layout: layout, client: client, events: reporter.handle).push(items)
        } catch {
            await transport.shutdown()
            throw error
        }
        await transport.shutdown()
        if output.json { return try Output.json(pushed) }
        for image in pushed { Output.line("\(image.reference)  tags: \(image.tags.joined(separator: ", "))") }
        Output.status(
            "pushed \(pushed.count) image\(pushed.count == 1 ? "" : "s"), uploaded \(Output.bytes(client.uploadedBytes)) in "
                + String(format: "%.1fs", Date().timeIntervalSince(started)))
    }
}

struct Pull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch an image from a registry into the local store.",
        discussion: """
            REF is REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:… (a name without registry means docker.io). Every \
            digest and size is verified before anything is stored. From a multi-platform image only --platform \
            (default: this machine's) is fetched. The image is tagged in the store as given, or with --tag.
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
                    storedAs: name))
        }
        Output.line("\(name)  \(descriptor.digest)")
    }
}

struct Login: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Save credentials for a registry.",
        discussion: """
            Stores the credential in docker's config.json ($DOCKER_CONFIG, else ~/.docker), through its credsStore \
            helper when one is configured, else base64 in `auths` with file mode 0600. The password is read from \
            --password-stdin (recommended) so it never appears in the process list or shell history.
            """)

    @Argument(help: "Registry host[:port].") var registry: String
    @Option(name: [.short, .long], help: "User name.") var username: String
    @Flag(name: .customLong("password-stdin"), help: "Read the password from standard input.") var passwordStdin = false
    @Option(name: [.short, .long], help: "Password (prefer --password-stdin).") var password: String?

    func run() throws {
        var secret = password
        if passwordStdin {
            secret = readLine(strippingNewline: true)
        }
        guard let secret, !secret.isEmpty else {
            throw ValidationError("give the password with --password-stdin (or --password)")
        }
        try CredentialStore().save(Credential(username: username, secret: secret), for: registry)
        Output.line("saved credentials for \(username) at \(registry)")
    }
}

struct Logout: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Remove saved credentials for a registry.")

    @Argument(help: "Registry host[:port].") var registry: String

    func run() throws {
        let removed = try CredentialStore().remove(for: registry)
        Output.line(removed ? "removed credentials for \(registry)" : "no saved credentials for \(registry)")
    }
}
