import ArgumentParser
import Foundation
import KilnBuild
import KilnHTTP
import KilnOCI
import KilnRegistry
import KilnRelease
import KilnSign
import KilnStore

/// Flags shared by the release commands.
struct ReleaseOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Where release documents (VERSION.json) live.", valueName: "dir"))
    var releases: String = "releases"

    var directory: ReleaseDirectory { ReleaseDirectory(path: releases) }
}

/// A registry client that is shut down after `body`, whatever happens.
func withRegistry<T>(
    _ registry: String, _ flags: RegistryFlags, _ body: (RegistryClient) async throws -> T
) async throws -> T {
    let (client, transport) = try flags.client(for: registry)
    do {
        let result = try await body(client)
        await transport.shutdown()
        return result
    } catch {
        await transport.shutdown()
        throw error
    }
}

/// `releases/VERSION.json`, else the `release-VERSION` artifact of `--to`'s registry.
func loadRelease(
    _ version: String, _ options: ReleaseOptions, to: String?, flags: RegistryFlags
) async throws -> ReleaseDocument {
    if options.directory.exists(version) { return try options.directory.load(version) }
    guard let to else { return try options.directory.load(version) }
    let target = try RegistryTarget(parsing: to)
    return try await withRegistry(target.registry, flags) { client in
        try await ReleaseArtifact(client: client, namespace: target.namespace).fetch(version)
    }
}

extension TagMove {
    var line: String {
        let name = repository.split(separator: "/").last.map(String.init) ?? repository
        guard changes else { return "\(name): \(tag) already at \(to)" }
        return "\(name): \(tag) \(from?.description ?? "(none)") → \(to)"
    }
}

struct Release: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish every image tagged VERSION and record the release in releases/VERSION.json.",
        discussion: """
            Pushes each image of the store tagged NAME:VERSION to REGISTRY/NAMESPACE/NAME (tagged VERSION), then \
            writes releases/VERSION.json (atomically): the version, the date (SOURCE_DATE_EPOCH, else now), the \
            source revision (--revision, else `git rev-parse HEAD`), digests of recipes/ and recipes/kiln.lock, \
            and every image by digest (with each platform's manifest for a multi-platform image). The document \
            is also pushed as an OCI artifact tagged release-VERSION in NAMESPACE/kiln-releases, so rollback works \
            from any machine. Moving tags (--moving-tag stable; none by default, so a release never changes \
            what production runs unless asked) are pointed at the release last. A release is final: releasing \
            an existing version again with other images is refused (--force replaces it); with the same images \
            it is an idempotent re-push that keeps the original date.

            With --sign-key every image is signed (cosign's sha256-<hex>.sig, index and platforms) after it is \
            pushed and before any moving tag points at it; the key's password comes from KILN_KEY_PASSWORD or \
            COSIGN_PASSWORD, else stdin.

              kiln build --version 1.2.0 && kiln release 1.2.0 --to registry.example.com/komodo --moving-tag stable
            """)

    @Argument(help: "The version: every image tagged NAME:VERSION in the store is released.") var version: String
    @Option(name: .long, help: "REGISTRY[/NAMESPACE] to publish to.") var to: String
    @Option(name: .customLong("moving-tag"), help: "A tag to point at this release, e.g. stable (repeatable).")
    var movingTags: [String] = []
    @Option(name: .long, help: "Source revision to record (default: git rev-parse HEAD, if in a git checkout).")
    var revision: String?
    @Option(name: .long, help: "The recipes directory whose digest is recorded.")
    var recipes: String = "recipes"
    @Flag(name: .long, help: "Replace an existing releases/VERSION.json that records other images.")
    var force = false
    @Option(
        name: .customLong("sign-key"),
        help: "Sign every image of the release with this private key (cosign's format; see kiln sign).")
    var signKey: String?
    @OptionGroup var releaseOptions: ReleaseOptions
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var file: String
        var release: ReleaseDocument
        var moves: [TagMove]
        var signatures: [ImageSigner.Signed]?
    }

    func validate() throws {
        try OCITag.check(version)
        for tag in movingTags { try OCITag.check(tag, as: "moving tag") }
        if movingTags.contains(version) { throw ValidationError("a moving tag cannot be the version itself") }
    }

    func run() async throws {
        let layout = try OCILayout(root: storeOptions.path, create: false)
        let target = try RegistryTarget(parsing: to)
        let environment = ProcessInfo.processInfo.environment
        let epoch =
            environment["SOURCE_DATE_EPOCH"].flatMap { Int64($0) }.map { max($0, 0) }
            ?? Int64(Date().timeIntervalSince1970)
        let lock = LockFile.path(besideRecipes: [recipes])
        let inputs = Releaser.ReleaseInputs(
            version: version, movingTags: movingTags, revision: revision ?? RecipeDigest.gitRevision(),
            recipesDigest: try RecipeDigest.directory(recipes),
            lockDigest: FileManager.default.fileExists(atPath: lock) ? try RecipeDigest.file(lock) : nil,
            created: Timestamp.rfc3339(epochSeconds: epoch), replace: force)
        // The key is opened before anything is pushed: a wrong password fails the release at once.
        let signingKey = try signKey.map { try KeyPassword.privateKey($0) }
        let reporter = TransferReporter(quiet: output.json)
        let (document, moves, signatures) = try await withRegistry(target.registry, registryFlags) { client in
            try await Releaser(client: client, target: target, events: reporter.handle)
                .release(from: layout, inputs, directory: releaseOptions.directory, signingKey: signingKey)
        }
        let file = releaseOptions.directory.file(for: version)
        if output.json {
            return try Output.json(
                Report(
                    file: file, release: document, moves: moves, signatures: signingKey == nil ? nil : signatures))
        }
        for image in document.images { Output.line("\(image.reference)  tags: \(image.tags.joined(separator: ", "))") }
        for signed in signatures where signed.platform == nil {
            Output.status("signed \(signed.reference) → \(signed.signatureTag)")
        }
        for move in moves { Output.line(move.line) }
        Output.status(
            "released \(version): \(document.images.count) image\(document.images.count == 1 ? "" : "s"), "
                + "recorded in \(file) and \(target.registry)/\(ReleaseArtifact.repository(namespace: target.namespace)):"
                + ReleaseArtifact.tag(version))
    }
}
