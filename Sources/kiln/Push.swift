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

    /// Top-down: plan (which tags, from the store alone) → copy (the fleet graph, then referrers) → report.
    func run() async throws {
        let target: RegistryTarget
        do { target = try RegistryTarget(parsing: to) } catch { throw ValidationError("\(error)") }
        let layout = try OCILayout(root: storeOptions.path, create: false)
        let plan: PushPlan
        do {
            plan = try PushPlan(images, allTags: allTags, from: layout, to: target)
        } catch let error as PushPlanError {
            if case .nothingToPush = error { throw error }
            throw ValidationError("\(error)")
        } catch let error as RegistryError {
            // The plan checks repository names (a usage error); it sends no request.
            throw ValidationError("\(error)")
        }
        let reporter = TransferReporter(quiet: output.json)
        let started = Date()
        let (pushed, uploaded) = try await withRegistry(target.registry, registryFlags) { client in
            let pushed = try await Pusher(layout: layout, client: client, events: reporter.handle).push(plan)
            return (pushed, client.uploadedBytes)
        }
        if output.json { return try Output.json(Report(images: pushed)) }
        for image in pushed {
            let sboms = image.referrers.map { "  referrers: \($0.count)" } ?? ""
            Output.line("\(image.reference)  tags: \(image.tags.joined(separator: ", "))\(sboms)")
        }
        Output.status(
            "pushed \(pushed.count) image\(pushed.count == 1 ? "" : "s"), uploaded \(Output.bytes(uploaded)) in "
                + String(format: "%.1fs", Date().timeIntervalSince(started)))
    }
}
