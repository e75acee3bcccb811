import Foundation
import KilnSign

extension DeployRefs {
    struct Mount {
        var volume: String
        var path: String
        var readOnly = false
    }

    /// RPC credentials a container reads: compose secret files (`komodo-rpcuser`, …) under `/run/secrets`, or
    /// the Kubernetes Secret `NAME-rpc` holding the same keys.
    struct SecretSet: Equatable {
        /// `komodo`, `litecoind`, `iguana` (notary settings).
        var name: String
        var files: [String]
        var optional = false

        static func rpc(_ name: String) -> SecretSet {
            SecretSet(name: name, files: [name + "-rpcuser", name + "-rpcpassword"])
        }
        static let notary = SecretSet(name: "iguana", files: ["iguana-ip", "iguana-pubkey", "iguana-passphrase"])
        var kubernetesName: String { name == "iguana" ? "iguana-notary" : name + "-rpc" }
    }

    /// One container of the node.
    struct Member {
        var service: Service
        var container: String
        var mounts: [Mount] = []
        /// Empty, in-memory directories (compose `tmpfs`, Kubernetes `emptyDir` with medium Memory): the RPC
        /// confs a service writes for itself, and /tmp.
        var scratch: [String] = []
        /// The readiness check: an exec through RPC (`komodo-ready`, `litecoin-cli getblockcount`).
        var ready: [String]?
        /// The RPC port liveness connects to (TCP only: no RPC call, no lock such as cs_main).
        var live: Int?
        /// Seconds the daemon gets to flush after the stop signal.
        var grace = 60
        var secrets: [SecretSet] = []
        /// The environment variable that tells the image where the secrets are mounted in Kubernetes.
        var secretsVariable: String?
        var environment: [(String, String)] = []
        var resources: Resources?
        /// The image writes only to its volumes and scratch directories.
        var readOnlyRoot = false
        var p2pPorts: [Port] = []
    }

    /// The services of one node: a daemon each, sharing one network namespace, never a data volume.
    struct Node {
        var name: String
        var members: [Member] = []
        var volumes: [(name: String, size: String)] = []
        var options: Options
        var isKomodo: Bool

        init(_ services: [Service], _ options: Options) {
            isKomodo = services.contains { $0.isKomodo }
            name = DNSLabel.label(options.node ?? (isKomodo ? "komodo-node" : "node"))
            self.options = options
            let komodoHome = "/home/komodo"
            // What iguana writes for itself: SECRET:PATH-UNDER-HOME:PORT (see iguana-start).
            var iguanaConfs: [String] = []
            for service in services {
                let container = DNSLabel.label(service.name)
                var member = Member(service: service, container: container)
                member.p2pPorts = service.p2pPorts(mode: service.isIguana ? options.iguanaMode : nil)
                member.resources = defaultResources(service)
                if service.isKomodo {
                    member.grace = 300
                    member.secrets = [.rpc("komodo")]
                    member.secretsVariable = "KOMODO_RPC_SECRETS"
                    member.readOnlyRoot = true
                    member.scratch = ["/tmp"]
                    member.live = service.rpcPort
                    if let chain = service.chain {
                        let standard = service.home + "/.komodo/" + chain
                        let datadir = service.labels["io.komodo.datadir"] ?? standard
                        // The chain's own volume; its ~/.komodo holds only KMD's conf, written from the secret.
                        member.scratch.append(service.home + "/.komodo")
                        member.mounts.append(Mount(volume: container + "-data", path: datadir))
                        member.ready =
                            ["komodo-ready", "-ac_name=" + chain] + (datadir == standard ? [] : ["-datadir=" + datadir])
                        if datadir.hasPrefix(komodoHome + "/"), let port = service.rpcPort {
                            iguanaConfs.append(
                                "komodo:\(datadir.dropFirst(komodoHome.count + 1))/\(chain).conf:\(port)")
                        }
                    } else {
                        member.mounts.append(Mount(volume: "komodo-data", path: service.home + "/.komodo"))
                        // backupwallet writes into komodod's -exportdir (komodo-backup, komodo-start).
                        member.mounts.append(Mount(volume: "komodo-backup", path: service.home + "/backup"))
                        member.environment.append(("KOMODO_EXPORTDIR", service.home + "/backup"))
                        // Never a one-word command: podman (4.3) runs a one-element healthcheck through /bin/sh,
                        // which the image does not have. -datadir is komodod's default.
                        member.ready = ["komodo-ready", "-datadir=" + service.home + "/.komodo"]
                        iguanaConfs.append("komodo:.komodo/komodo.conf:\(service.rpcPort ?? 7771)")
                    }
                } else {
                    for path in service.volumes {
                        let volume =
                            service.volumes.count == 1 ? container + "-data" : container + "-" + DNSLabel.slug(path)
                        member.mounts.append(Mount(volume: volume, path: path))
                    }
                    if service.isCoin, let secret = service.environment["COIN_SECRET"] {
                        member.grace = 300
                        member.secrets = [.rpc(secret)]
                        member.secretsVariable = "COIN_RPC_SECRETS"
                        member.readOnlyRoot = true
                        member.scratch = ["/tmp"]
                        member.live = service.rpcPort
                        let cli = String(service.name.dropLast()) + "-cli"
                        member.ready = [cli, "getblockcount"]
                        if let conf = service.environment["COIN_CONF"], conf.hasPrefix(service.home + "/"),
                            let port = service.rpcPort
                        {
                            iguanaConfs.append("\(secret):\(conf.dropFirst(service.home.count + 1)):\(port)")
                        }
                    } else if service.isIguana {
                        member.grace = 30
                        member.readOnlyRoot = true
                        member.scratch = ["/tmp"]
                        member.live = service.port("rpc", mode: options.iguanaMode)
                        member.environment.append(("IGUANA_MODE", options.iguanaMode))
                        member.secretsVariable = "IGUANA_SECRETS"
                    }
                }
                members.append(member)
            }
            // iguana: the daemons' RPC secrets, read-only, and scratch directories for the confs it writes from
            // them; none of the daemons' volumes.
            for index in members.indices where members[index].service.isIguana {
                let home = members[index].service.home
                let secrets = members.compactMap { $0.secrets.first }
                var seen: Set<String> = []
                members[index].secrets = secrets.filter { seen.insert($0.name).inserted }
                if options.iguanaMode != "none" { members[index].secrets.append(.notary) }
                if !iguanaConfs.isEmpty {
                    members[index].environment.append(("IGUANA_RPC_CONFS", iguanaConfs.joined(separator: " ")))
                }
                var tops: Set<String> = []
                for entry in iguanaConfs {
                    let path = entry.split(separator: ":").dropFirst().first ?? ""
                    if let top = path.split(separator: "/").first { tops.insert(String(top)) }
                }
                members[index].scratch += tops.sorted().map { home + "/" + $0 }
            }
            var seen: Set<String> = []
            for member in members {
                for mount in member.mounts where seen.insert(mount.volume).inserted {
                    let size =
                        options.sizes[mount.volume] ?? defaultSizes[mount.volume]
                        ?? (member.service.chain != nil ? chainSize : "10Gi")
                    volumes.append((mount.volume, size))
                }
            }
            volumes.sort { $0.name < $1.name }
        }

        /// Kubernetes: the Pods use the node's network namespace, as the daemons (and komodod's backup job) call
        /// each other's RPC on 127.0.0.1.
        var sharesHostNetwork: Bool { members.count > 1 || members.contains { $0.service.isKomodod } }

        /// Every member's P2P ports: published once, on the namespace they share.
        var p2pPorts: [Port] { Array(Set(members.flatMap(\.p2pPorts))).sorted() }
        var secretSets: [SecretSet] {
            var seen: Set<String> = []
            return members.flatMap(\.secrets).filter { seen.insert($0.name).inserted }
        }
    }
}
