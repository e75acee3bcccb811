import ArgumentParser
import Foundation
import KilnOCI
import KilnRelease
import KilnStore

struct DeployRefsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy-refs",
        abstract: "Print a release's images by digest, or as a compose file or Kubernetes manifests.",
        discussion: """
            --format refs (default): one REGISTRY/REPOSITORY@sha256:… per line. --format compose: a docker \
            compose file with one service per image (ports from the image's ExposedPorts, its Volumes as named \
            volumes). --format kubernetes: a headless Service and a StatefulSet per image (containerPorts, a \
            volumeClaimTemplate per volume, 10Gi each: edit to fit). Every image is a digest reference, so a \
            deployment runs exactly the release. Image configs come from the local store when it has them, \
            else from the registry. Output is deterministic.

              kiln deploy-refs 1.2.0 --format compose -o notary/compose.yaml
            """)

    @Argument(help: "The release.") var version: String
    @Option(name: .long, help: "refs, compose or kubernetes.") var format: DeployRefs.Format = .refs
    @Option(name: .shortAndLong, help: "Write to this file (atomically) instead of standard output.") var output:
        String?
    @Option(name: .long, help: "REGISTRY[/NAMESPACE] the images are served from (default: where they were released).")
    var to: String?
    @OptionGroup var releaseOptions: ReleaseOptions
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registryFlags: RegistryFlags

    func run() async throws {
        let document = try await loadRelease(version, releaseOptions, to: to, flags: registryFlags)
        let target =
            try to.map(RegistryTarget.init(parsing:))
            ?? RegistryTarget(registry: document.registry, namespace: document.namespace)
        let layout =
            FileManager.default.fileExists(atPath: storeOptions.path + "/index.json")
            ? try OCILayout(root: storeOptions.path, create: false) : nil
        var services: [DeployRefs.Service] = []
        if format == .refs {
            services = document.images.map {
                DeployRefs.Service(
                    name: $0.name, reference: "\(target.registry)/\(target.repository($0.name))@\($0.digest)",
                    config: nil)
            }
        } else {
            services = try await withRegistry(target.registry, registryFlags) { client in
                let source = ImageSource(layout: layout, client: client)
                var result: [DeployRefs.Service] = []
                for image in document.images {
                    let repository = target.repository(image.name)
                    let platforms = try await source.images(repository, image.digest, mediaType: image.mediaType)
                    let config =
                        (platforms.first { $0.config.platform == Platform.host } ?? platforms.first)?.config
                    result.append(
                        DeployRefs.Service(
                            name: image.name, reference: "\(target.registry)/\(repository)@\(image.digest)",
                            config: config))
                }
                return result
            }
        }
        let text = DeployRefs.render(document, services: services, format: format)
        if let output {
            try AtomicFile.write(Data(text.utf8), to: output)
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}

extension DeployRefs.Format: ExpressibleByArgument {}
