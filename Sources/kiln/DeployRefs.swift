import ArgumentParser
import Foundation
import KilnOCI
import KilnRelease
import KilnSign
import KilnStore

struct DeployRefsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy-refs",
        abstract: "Print a release's images by digest, or one node of them as a compose project or a Kubernetes Pod.",
        discussion: """
            --format refs (default): one REGISTRY/REPOSITORY@sha256:… per line. --format compose / kubernetes: \
            one node: komodod, the assetchains, iguana (and a third-party daemon with --third-party) as \
            containers sharing one network namespace, so they reach each other on 127.0.0.1. Only P2P ports \
            (the images' io.komodo.p2p-port label) are published, RPC never; base images are not deployed; \
            Komodo daemons get 300 s to stop, exec health checks (komodo-cli … getconnectioncount) and their \
            RPC credentials from a secret (compose: ./secrets/komodo-rpcuser and komodo-rpcpassword; \
            Kubernetes: the Secret komodo-rpc). Kubernetes: one StatefulSet with fsGroup, a volume claim per \
            data volume (sizes: --volume-size NAME=SIZE), a headless Service and a LoadBalancer for P2P. \
            Every image is a digest reference, so a deployment runs exactly the release. Image configs come \
            from the local store when it has them, else from the registry. Output is deterministic.

              kiln deploy-refs 1.2.0 --format compose --services komodod,doc,marty,iguana -o node/compose.yaml
              kiln deploy-refs 1.2.0 --format kubernetes --third-party litecoind --volume-size komodo-data=200Gi

            --key PUB (with -o FILE) also writes, beside FILE, policy.json and registries.d/kiln-release.yaml for \
            podman (or CRI-O): images under the release's REGISTRY/NAMESPACE must carry a cosign signature by \
            PUB (sigstoreSigned, the key inline); other images are accepted as before. Install them as \
            /etc/containers/policy.json and /etc/containers/registries.d/. A podman without sigstore support \
            (Debian 12's) refuses every image under such a policy: there, run `kiln verify --key PUB` on each \
            image before `up` instead.
            """)

    @Argument(help: "The release.") var version: String
    @Option(name: .long, help: "refs, compose or kubernetes.") var format: DeployRefs.Format = .refs
    @Option(name: .shortAndLong, help: "Write to this file (atomically) instead of standard output.") var output:
        String?
    @Option(name: .long, help: "REGISTRY[/NAMESPACE] the images are served from (default: where they were released).")
    var to: String?
    @Option(
        name: .customLong("services"),
        help: "Only these images in the node (comma-separated; default: all but third-party daemons).")
    var only: String?
    @Option(name: .long, help: "Add a third-party daemon to the node (bitcoind, litecoind).") var thirdParty: [String] =
        []
    @Option(name: .long, help: "A Kubernetes volume size, NAME=SIZE (e.g. komodo-data=200Gi).") var volumeSize:
        [String] = []
    @Option(name: .long, help: "The node's name (compose project, StatefulSet).") var node = "komodo-node"
    @Option(
        name: .long,
        help: "With -o: also write policy.json and registries.d/ beside it, requiring this key's signatures.")
    var key: String?
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
        var options = DeployRefs.Options()
        options.node = node
        options.services = only.map { $0.split(separator: ",").map(String.init) }
        options.thirdParty = thirdParty
        for pair in volumeSize {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty,
                parts[1].range(of: "^[0-9]+(Mi|Gi|Ti)$", options: .regularExpression) != nil
            else { throw ValidationError("--volume-size takes NAME=SIZE, e.g. komodo-data=200Gi (got '\(pair)')") }
            options.sizes[parts[0]] = parts[1]
        }
        let text = DeployRefs.render(document, services: services, format: format, options: options)
        if let key {
            guard let output else { throw ValidationError("--key writes policy.json beside -o FILE: give -o") }
            let pem = try PublicKey.load(path: key).pem
            let directory = (output as NSString).deletingLastPathComponent
            let base = directory.isEmpty ? "." : directory
            let scope = target.namespace.isEmpty ? target.registry : "\(target.registry)/\(target.namespace)"
            try FileManager.default.createDirectory(atPath: base + "/registries.d", withIntermediateDirectories: true)
            try AtomicFile.write(
                try ContainersPolicy.policy(scope: scope, publicKeyPEM: pem), to: base + "/policy.json")
            try AtomicFile.write(
                Data(ContainersPolicy.registriesD(scope: scope).utf8), to: base + "/registries.d/kiln-release.yaml")
        }
        if let output {
            try AtomicFile.write(Data(text.utf8), to: output)
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}

extension DeployRefs.Format: ExpressibleByArgument {}
