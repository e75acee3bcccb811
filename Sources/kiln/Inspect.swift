import ArgumentParser
import Foundation
import KilnBuild
import KilnOCI
import KilnStore

struct Inspect: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show an image's manifest, config and layers.",
        discussion: """
            REF is NAME:TAG as listed by `kiln images`. Text output summarises; --json gives the manifest and \
            config documents as stored, plus each layer's digest, diff_id, size and the recipe step that made it. \
            --sbom prints the image's SPDX document instead (one per platform, as a JSON array for an index, or \
            the one of --platform); \
            --provenance its build provenance, an in-toto statement with a SLSA provenance v1 predicate (recipe \
            and lock digests, every input by digest), for one platform (--platform).

            A REF with a registry (REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:…, like `crane config` or \
            `skopeo inspect`) is read from that registry, storing nothing: every platform of an index, or those \
            --platform names.

              kiln inspect komodod:0.9.2-2
              kiln inspect registry.example.com/komodo/komodod:0.9.2-2 --platform linux/arm64 --json
            """)

    @Argument(help: "The image, as NAME:TAG (the store) or REGISTRY/NAME:TAG (a registry).") var reference: String
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registryFlags: RegistryFlags
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Only these platforms of a remote index (repeatable, e.g. linux/arm64); with --sbom or --provenance, the one platform to print.",
            valueName: "os/arch"))
    var platform: [String] = []
    @Flag(name: .long, help: "Print the image's SPDX SBOM (the document push publishes beside it).") var sbom = false
    @Flag(name: .long, help: "Print the image's build provenance (in-toto statement, SLSA provenance v1).")
    var provenance = false
    @OptionGroup var output: OutputOptions

    struct Layer: Encodable {
        var digest: String
        var diffID: String
        var mediaType: String
        var size: Int64
        var createdBy: String?
    }

    struct PlatformImage: Encodable {
        var platform: String
        var manifestDigest: String
        var manifest: Manifest
        var config: ImageConfig
        var layers: [Layer]
        /// From the image's SPDX SBOM, when it has Debian packages.
        var packages: [String]?
    }

    struct Report: Encodable {
        var reference: String
        var digest: String
        var mediaType: String
        var images: [PlatformImage]
    }

    func validate() throws {
        for name in platform where Platform(parsing: name) == nil {
            throw ValidationError("'\(name)' is not a platform: write os/arch, e.g. linux/arm64")
        }
    }

    func run() async throws {
        if Self.isRemote(reference) {
            guard !sbom, !provenance else {
                throw ValidationError("--sbom and --provenance read the local store: give NAME:TAG (or use kiln sbom)")
            }
            let report = try await remoteReport()
            if output.json { return try Output.json(report) }
            return print(report)
        }
        guard platform.isEmpty || ((sbom || provenance) && platform.count == 1) else {
            throw ValidationError(
                "--platform is for an image in a registry, or one platform with --sbom or --provenance")
        }
        let layout = try OCILayout(root: storeOptions.path, create: false)
        let descriptor = try layout.resolve(reference)
        if sbom { return try printSBOM(layout: layout, descriptor: descriptor) }
        if provenance { return try printProvenance(layout: layout, descriptor: descriptor) }
        let images = try layout.images(for: descriptor).map { image in
            let history = (image.config.history ?? []).filter { $0.emptyLayer != true }
            let layers = image.manifest.layers.enumerated().map { i, layer in
                Layer(
                    digest: layer.digest.description,
                    diffID: i < image.config.rootfs.diffIDs.count ? image.config.rootfs.diffIDs[i].description : "",
                    mediaType: layer.mediaType, size: layer.size,
                    createdBy: i < history.count ? history[i].createdBy : nil)
            }
            return PlatformImage(
                platform: image.config.platform.description,
                manifestDigest: image.manifestDescriptor.digest.description,
                manifest: image.manifest, config: image.config, layers: layers,
                packages: try DebianPackages.sbomPackages(layout: layout, manifest: image.manifestDescriptor.digest)?
                    .map { "\($0.name) \($0.version)" })
        }
        let report = Report(
            reference: reference, digest: descriptor.digest.description, mediaType: descriptor.mediaType, images: images
        )
        if output.json { return try Output.json(report) }
        print(report)
    }

    func print(_ report: Report) {
        Output.line("\(report.reference)  \(report.digest)")
        for image in report.images {
            let exec = image.config.config
            Output.line("platform    \(image.platform)  manifest \(image.manifestDigest)")
            Output.line("config      \(image.manifest.config.digest)")
            if let created = image.config.created { Output.line("created     \(created)") }
            if let v = exec?.entrypoint { Output.line("entrypoint  \(v)") }
            if let v = exec?.cmd { Output.line("cmd         \(v)") }
            if let v = exec?.user { Output.line("user        \(v)") }
            if let v = exec?.workingDir { Output.line("workdir     \(v)") }
            if let v = exec?.env { Output.line("env         \(v.joined(separator: " "))") }
            if let v = exec?.exposedPorts { Output.line("ports       \(v.keys.sorted().joined(separator: " "))") }
            if let v = exec?.volumes { Output.line("volumes     \(v.keys.sorted().joined(separator: " "))") }
            if let v = exec?.stopSignal { Output.line("stop signal \(v)") }
            for (k, v) in (exec?.labels ?? [:]).sorted(by: { $0.key < $1.key }) { Output.line("label       \(k)=\(v)") }
            Output.line("layers (\(image.layers.count)):")
            for layer in image.layers {
                Output.line(
                    "  \(layer.digest)  \(Output.bytes(layer.size).padding(toLength: 9, withPad: " ", startingAt: 0))  \(layer.createdBy ?? "")"
                )
            }
            if let packages = image.packages {
                Output.line("packages (\(packages.count), SPDX SBOM):")
                for package in packages { Output.line("  \(package)") }
            }
        }
    }
}
