import ArgumentParser
import Foundation
import KilnOCI
import KilnRegistry
import KilnRelease
import KilnSign
import KilnStore

struct DeployRefsCommand: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy-refs",
        abstract: "Print a release's images by digest, or one node of them as a compose project or a Kubernetes Pod.",
        discussion: """
            --format refs (default): one REGISTRY/REPOSITORY@sha256:… per line. --format compose / kubernetes: \
            one node: komodod, the assetchains, iguana (and a third-party daemon with --third-party) sharing \
            one network namespace, so they reach each other's RPC on 127.0.0.1 (compose: the first service's; \
            Kubernetes: one StatefulSet per daemon with hostNetwork, held on komodod's node by pod affinity). \
            Only P2P ports are published (the images' io.komodo.p2p-port label; any other image: the ports it \
            declares), RPC never; base images are not deployed; no service mounts another's data volume. \
            Daemons get 300 s to stop, readiness through RPC, liveness by TCP, their RPC credentials from \
            secrets (compose: ./secrets/NAME-rpcuser and NAME-rpcpassword; Kubernetes: the Secret NAME-rpc), \
            resource requests and memory limits, read-only root filesystems and (compose) rotated logs; \
            komodod's wallet is backed up into the komodo-backup volume (Kubernetes: a CronJob). Every image \
            is a digest reference, so a deployment runs exactly the release. Image configs come from the local \
            store when it has them, else from the registry. Output is deterministic.

              kiln deploy-refs 1.2.0 --format compose --services komodod,doc,marty,iguana -o node/compose.yaml
              kiln deploy-refs 1.2.0 --format kubernetes --third-party litecoind --volume-size komodo-data=200Gi
              kiln deploy-refs 1.2.0 --format compose --iguana-mode notary -o node/compose.yaml

            --key PUB (with -o FILE) also writes, beside FILE, policy.json and registries.d/kiln-release.yaml for \
            podman (or CRI-O): images under the release's REGISTRY/NAMESPACE must carry a cosign signature by \
            PUB (sigstoreSigned, the key inline); other images are accepted as before. Install them as \
            /etc/containers/policy.json and /etc/containers/registries.d/. A podman without sigstore support \
            (Debian 12's) refuses every image under such a policy: there, run `kiln verify --key PUB` on each \
            image before `up` instead. With --format kubernetes also cluster-image-policy.yaml: two sigstore \
            policy-controller ClusterImagePolicies requiring PUB's signature and PUB's signed SLSA provenance \
            for the same images (kubectl apply it; policy-controller checks namespaces labelled \
            policy.sigstore.dev/include=true).
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
    @Option(
        name: .long, help: "The node's name (compose project, Kubernetes name prefix; default komodo-node, or node).")
    var node: String?
    @Option(name: .long, help: "iguana's mode: none (default), notary or 3rd_party (its ports, IGUANA_MODE).")
    var iguanaMode = "none"
    @Option(
        name: .long,
        help:
            "With -o: also write policy.json and registries.d/ beside it, requiring this key's signatures (repeatable: any key, while keys rotate)."
    )
    var key: [String] = []
    @OptionGroup var releaseOptions: ReleaseOptions
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var outputOptions: OutputOptions

    struct Report: Encodable {
        var version: String
        var format: String
        var references: [String]
        /// The compose or Kubernetes document (absent for `refs`, and when written to a file).
        var document: String?
        var path: String?
    }

    /// VERSION names a file and an artifact tag: checked before anything is opened.
    func validate() throws { try OCITag.check(version) }

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
                var result: [DeployRefs.Service] = []
                for image in document.images {
                    let repository = target.repository(image.name)
                    let source = StoreFirst(layout, then: RegistryRepository(client: client, repository: repository))
                    let platforms = try await source.images(
                        under: Descriptor(mediaType: image.mediaType, digest: image.digest, size: 0))
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
        guard ["none", "notary", "3rd_party"].contains(iguanaMode) else {
            throw ValidationError("--iguana-mode is none, notary or 3rd_party (got '\(iguanaMode)')")
        }
        options.iguanaMode = iguanaMode
        for pair in volumeSize {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty,
                parts[1].range(of: "^[0-9]+(Mi|Gi|Ti)$", options: .regularExpression) != nil
            else { throw ValidationError("--volume-size takes NAME=SIZE, e.g. komodo-data=200Gi (got '\(pair)')") }
            options.sizes[parts[0]] = parts[1]
        }
        let text = DeployRefs.render(document, services: services, format: format, options: options)
        if !key.isEmpty {
            guard let output else { throw ValidationError("--key writes policy.json beside -o FILE: give -o") }
            let pems = try key.map { try PublicKey.load(path: $0).pem }
            let directory = (output as NSString).deletingLastPathComponent
            let base = directory.isEmpty ? "." : directory
            let scope = target.namespace.isEmpty ? target.registry : "\(target.registry)/\(target.namespace)"
            try FileManager.default.createDirectory(atPath: base + "/registries.d", withIntermediateDirectories: true)
            try AtomicFile.write(
                try ContainersPolicy.policy(scope: scope, publicKeyPEMs: pems), to: base + "/policy.json")
            try AtomicFile.write(
                Data(ContainersPolicy.registriesD(scope: scope).utf8), to: base + "/registries.d/kiln-release.yaml")
            if format == .kubernetes {
                let policy = ClusterImagePolicy.yaml(scope: scope, publicKeyPEMs: pems)
                try AtomicFile.write(Data(policy.utf8), to: base + "/cluster-image-policy.yaml")
            }
        }
        if let output { try AtomicFile.write(Data(text.utf8), to: output) }
        if outputOptions.json {
            return try Output.json(
                Report(
                    version: version, format: "\(format)", references: services.map(\.reference),
                    document: format == .refs || output != nil ? nil : text, path: output))
        }
        if output == nil {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}

extension DeployRefs.Format: ExpressibleByArgument {}
