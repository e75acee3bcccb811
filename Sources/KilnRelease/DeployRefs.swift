import Foundation
import KilnOCI
import KilnSign

/// `kiln deploy-refs`: a release's images as digest references, plain or as the deployment of one node. Every
/// image is addressed `REGISTRY/REPOSITORY@sha256:…`, never by tag, so a deployment runs exactly what was
/// released. The output depends only on the release, the image configs and the options (sorted, no
/// timestamps of its own).
///
/// A node is what the original proposal deploys: komodod, the chosen assetchains, iguana and, when asked, a
/// third-party daemon. They expect each other on 127.0.0.1 (assetchains call KMD's RPC there, iguana calls
/// every daemon's), so they share one network namespace: compose's first service's, or, in Kubernetes, the
/// node's (one StatefulSet per daemon, `hostNetwork`, held on one node by pod affinity), so that one daemon's
/// restart or readiness never touches another's. Only P2P ports (the `io.komodo.p2p-port` label; an image
/// without one: every port it declares) are published; RPC binds 127.0.0.1 and is never published. No
/// service is given another's data volume: each writes the RPC confs it needs from the RPC secrets. Images
/// without an entrypoint or cmd (the runtime bases) are never deployed.
public enum DeployRefs {
    public enum Format: String, Sendable, CaseIterable, Codable {
        case refs, compose, kubernetes
    }

    /// What a deployment needs from one image's config.
    public struct Service: Sendable, Equatable {
        public var name: String
        public var reference: String
        /// `7770/tcp`, sorted by number then protocol.
        public var ports: [Port]
        /// Absolute paths, sorted.
        public var volumes: [String]
        public var stopSignal: String?
        public var labels: [String: String]
        /// False for a base image: nothing to run.
        public var runnable: Bool
        /// The image's HOME (its env, else its workdir).
        public var home: String
        /// The image's user when it is a uid (`3003`, `3003:0`), which Kubernetes can check is not root.
        public var uid: Int?
        /// The image's environment, by name.
        public var environment: [String: String]

        public init(name: String, reference: String, config: ImageConfig?) {
            self.name = name
            self.reference = reference
            let exec = config?.config
            ports = (exec?.exposedPorts ?? [:]).keys.compactMap(Port.init(parsing:)).sorted()
            volumes = (exec?.volumes ?? [:]).keys.sorted()
            stopSignal = exec?.stopSignal
            labels = exec?.labels ?? [:]
            runnable = !(exec?.entrypoint ?? []).isEmpty || !(exec?.cmd ?? []).isEmpty
            let homeVariable = (exec?.env ?? []).first { $0.hasPrefix("HOME=") }.map { String($0.dropFirst(5)) }
            home = homeVariable ?? exec?.workingDir ?? "/"
            uid = (exec?.user?.split(separator: ":").first).flatMap { Int($0) }
            var environment: [String: String] = [:]
            for entry in exec?.env ?? [] {
                let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                if parts.count == 2 { environment[String(parts[0])] = String(parts[1]) }
            }
            self.environment = environment
        }

        /// The assetchain's symbol (`-ac_name`), when the image is one.
        public var chain: String? { labels["io.komodo.assetchain.name"] }
        public var isKomodod: Bool { name == "komodod" }
        public var isKomodo: Bool { isKomodod || chain != nil }
        public var isIguana: Bool { name == "iguana" }
        /// bitcoind, litecoind: started by coin-start, which writes their conf from a secret.
        public var isCoin: Bool { environment["COIN_SECRET"] != nil }
        /// Whether this is one of the platform's images (labelled), not some other image deployed the same way.
        public var isPlatform: Bool {
            labels.keys.contains { $0.hasPrefix("io.komodo.") } || isKomodod || isIguana || isCoin
        }
        /// The RPC port the image labels (the chain's, komodod's, the daemon's, iguana's in its default mode).
        public var rpcPort: Int? { labels["io.komodo.rpc-port"].flatMap { Int($0) } }

        /// A mode's port from the image's labels (`io.komodo.mode.notary.p2p-port`); nil for the default mode.
        public func port(_ kind: String, mode: String?) -> Int? {
            guard let mode, mode != "none" else { return labels["io.komodo.\(kind)-port"].flatMap { Int($0) } }
            return labels["io.komodo.mode.\(mode).\(kind)-port"].flatMap { Int($0) }
        }

        /// The modes the image declares ports for, besides its default.
        public var modes: [String] {
            Set(
                labels.keys.compactMap { key -> String? in
                    let parts = key.split(separator: ".")
                    return key.hasPrefix("io.komodo.mode.") && parts.count == 5 ? String(parts[3]) : nil
                }
            ).sorted()
        }

        /// Ports published off the host: the labelled P2P ports the image exposes; an image without that label
        /// (not one of the platform's): every port it declares.
        public var p2pPorts: [Port] { p2pPorts(mode: nil) }

        public func p2pPorts(mode: String?) -> [Port] {
            if let mode, mode != "none" {
                return port("p2p", mode: mode).map { [Port(number: $0, proto: "tcp")] } ?? []
            }
            guard let label = labels["io.komodo.p2p-port"] else { return isPlatform ? [] : ports }
            let labelled = Set(label.split(separator: ",").compactMap { Int($0) })
            return ports.filter { labelled.contains($0.number) }
        }
    }

    public struct Port: Sendable, Hashable, Comparable {
        public var number: Int
        public var proto: String

        init?(parsing text: String) {
            let parts = text.split(separator: "/").map(String.init)
            guard let first = parts.first, let number = Int(first), (1...65535).contains(number) else { return nil }
            self.number = number
            proto = parts.count > 1 ? parts[1].lowercased() : "tcp"
        }

        public init(number: Int, proto: String) {
            self.number = number
            self.proto = proto
        }

        public static func < (a: Port, b: Port) -> Bool { (a.number, a.proto) < (b.number, b.proto) }
    }

    /// What goes into the node.
    public struct Options: Sendable {
        /// The compose project / name prefix of the Kubernetes objects; nil: `komodo-node` when the node holds
        /// a Komodo daemon, else `node`.
        public var node: String?
        /// iguana's mode (`none`, `notary`, `3rd_party`): its environment and the ports it listens on.
        public var iguanaMode = "none"
        /// Only these images (by name); nil: every runnable image but the third-party daemons.
        public var services: [String]?
        /// Third-party daemons to add (e.g. `litecoind`).
        public var thirdParty: [String] = []
        /// Volume sizes (Kubernetes) by volume name, over `defaultSizes`.
        public var sizes: [String: String] = [:]
        public init() {}
    }

    /// Daemons deployed only when asked: notaries ran one of them beside KMD.
    public static let thirdPartyDaemons: Set<String> = ["bitcoind", "litecoind"]

    /// Volume sizes that fit each chain's data in 2026 with room to grow; `--volume-size` changes them.
    public static let defaultSizes: [String: String] = [
        "komodo-data": "150Gi", "pirate-data": "100Gi", "bitcoind-data": "1Ti", "litecoind-data": "300Gi",
        "iguana-data": "10Gi", "komodo-backup": "1Gi",
    ]

    /// CPU and memory for one container: what the scheduler reserves (`cpu`, `memory`) and the memory above
    /// which it is killed (`memoryLimit`). No CPU limit: a daemon verifying blocks is throttled, not helped.
    public struct Resources: Sendable, Equatable {
        public var cpu: String
        public var memory: String
        public var memoryLimit: String
    }

    /// Defaults, documented in README ("Resources"): komodod and PIRATE hold the largest UTXO sets and note
    /// commitment trees; a small chain runs in 1Gi; bitcoind's dbcache and mempool want 4Gi.
    public static func defaultResources(_ service: Service) -> Resources? {
        switch service.name {
        case "komodod", "pirate": return Resources(cpu: "1", memory: "4Gi", memoryLimit: "8Gi")
        case "bitcoind": return Resources(cpu: "1", memory: "4Gi", memoryLimit: "8Gi")
        case "litecoind": return Resources(cpu: "500m", memory: "2Gi", memoryLimit: "4Gi")
        case "iguana": return Resources(cpu: "250m", memory: "512Mi", memoryLimit: "2Gi")
        default: return service.chain != nil ? Resources(cpu: "250m", memory: "1Gi", memoryLimit: "4Gi") : nil
        }
    }
    static let chainSize = "25Gi"

    /// The node's services in start order: komodod, the chains, then the rest, by name.
    public static func select(_ all: [Service], _ options: Options) -> [Service] {
        let wanted = all.filter { service in
            guard service.runnable else { return false }
            if options.thirdParty.contains(service.name) { return true }
            if let names = options.services { return names.contains(service.name) }
            return !thirdPartyDaemons.contains(service.name)
        }
        func rank(_ s: Service) -> Int { s.isKomodod ? 0 : s.chain != nil ? 1 : 2 }
        return wanted.sorted { (rank($0), $0.name) < (rank($1), $1.name) }
    }

    public static func render(
        _ document: ReleaseDocument, services: [Service], format: Format, options: Options = Options()
    ) -> String {
        switch format {
        case .refs: return services.map { $0.reference + "\n" }.joined()
        case .compose: return compose(document, Node(select(services, options), options))
        case .kubernetes: return kubernetes(document, Node(select(services, options), options))
        }
    }

    /// The first comment line of a deployment file.
    static func header(_ document: ReleaseDocument, _ format: Format) -> String {
        "kiln deploy-refs \(document.version) --format \(format.rawValue): one node, every image pinned by digest"
    }

    /// `8Gi` → `8g`, `512Mi` → `512m`: compose's byte units.
    static func composeBytes(_ quantity: String) -> String {
        quantity.replacingOccurrences(of: "i", with: "").lowercased()
    }
}
