import ArgumentParser
import Foundation
import KilnOCI
import KilnRegistry
import KilnRelease
import KilnStore

struct Push: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish images from the local store to a registry.",
        discussion: """
            Which tags go (like docker push): NAME:TAG pushes that tag. NAME alone pushes the image's current \
            version: its highest tag that is a version (compared number by number: 1.10.0 > 1.9.2 > 1.9.2-rc1; \
            tags such as `stable` are not versions) together with every tag naming the same image (the recipe's \
            extra tags). With no image named, each image's current version. --all-tags pushes every tag of the \
            named images (of every image when none is named). Images pulled from a registry (build bases, \
            `kiln pull`) are never pushed: use `kiln copy` for those.

            Each image goes to REGISTRY/NAMESPACE/NAME (names are checked against the distribution grammar \
            before any request). All images go as one graph: blobs the registry has are skipped, each other \
            blob is uploaded once and mounted into every other repository that needs it (also from repositories \
            earlier runs saw it in: $KILN_CACHE_DIR/blob-locations.json, else ~/.cache/kiln; a place the registry \
            no longer has costs one refused mount and is forgotten), large layers go up in resumable chunks; \
            manifests follow by digest and tags come last, so a tag never points at something incomplete. Each image's SPDX SBOM follows, found by the referrers \
            API or, where the registry has none, under the tag sha256-<image digest> (as oras and cosign look). \
            Each image is printed as REGISTRY/REPOSITORY@sha256:…: pin that.

            Credentials come from KILN_REGISTRY_USERNAME/KILN_REGISTRY_PASSWORD (optionally limited to \
            KILN_REGISTRY_HOST), else docker's config.json (`kiln login`, credHelpers, credsStore).

              kiln push --to registry.example.com/komodo
              kiln push komodod --all-tags --to registry.example.com/komodo
              kiln push komodod:0.9.0 --to 127.0.0.1:5000/test --json
            """)

    @Argument(help: "Images as NAME or NAME:TAG (default: every image's current version).") var images: [String] = []
    @Option(name: .long, help: "REGISTRY[/NAMESPACE] to push to.") var to: String
    @Flag(name: .customLong("all-tags"), help: "Push every tag of the named images (of all images when none is named).")
    var allTags = false
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var images: [PushedImage]
    }

    func run() async throws {
        let target: RegistryTarget
        do { target = try RegistryTarget(parsing: to) } catch { throw ValidationError("\(error)") }
        let layout = try OCILayout(root: storeOptions.path, create: false)
        let tags = try PushSelection.select(images, allTags: allTags, from: layout)
        guard !tags.isEmpty else {
            throw CommandFailure("\(layout.root) holds no image of its own to push: build one first (`kiln build`)")
        }
        var items: [Pusher.Item] = []
        for (name, group) in Dictionary(grouping: tags, by: \.name).sorted(by: { $0.key < $1.key }) {
            let repository = target.repository(name)
            do { try RepositoryName.validate(repository, registry: target.registry) } catch {
                throw ValidationError("\(error)")
            }
            for (_, same) in Dictionary(grouping: group, by: \.descriptor.digest).sorted(by: { $0.key < $1.key }) {
                var descriptor = same[0].descriptor
                descriptor.annotations = nil
                items.append(.init(repository: repository, descriptor: descriptor, tags: same.map(\.tag).sorted()))
            }
        }
        let (client, transport) = try registryFlags.client(for: target.registry)
        let reporter = TransferReporter(quiet: output.json)
        let started = Date()
        let pushed: [PushedImage]
        let cache = BlobLocationCache()
        let seen = BlobSightings()
        defer { seen.save(to: cache, registry: target.registry) }
        do {
            pushed = try await Pusher(
                layout: layout, client: client, known: cache.locations(for: target.registry),
                events: seen.tap(reporter.handle)
            ).push(items)
        } catch {
            await transport.shutdown()
            throw error
        }
        await transport.shutdown()
        if output.json { return try Output.json(Report(images: pushed)) }
        for image in pushed {
            let sboms = image.referrers.map { "  referrers: \($0.count)" } ?? ""
            Output.line("\(image.reference)  tags: \(image.tags.joined(separator: ", "))\(sboms)")
        }
        Output.status(
            "pushed \(pushed.count) image\(pushed.count == 1 ? "" : "s"), uploaded \(Output.bytes(client.uploadedBytes)) in "
                + String(format: "%.1fs", Date().timeIntervalSince(started)))
    }
}
