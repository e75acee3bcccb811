import Foundation

extension DeployRefs {
    struct Mount {
        var volume: String
        var path: String
    }

    /// One container of the node.
    struct Member {
        var service: Service
        var container: String
        var mounts: [Mount]
        /// An exec health check (`komodo-cli … getconnectioncount`), when the image has a CLI for one.
        var probe: [String]?
        /// Seconds the daemon gets to flush after the stop signal.
        var grace: Int
        /// Whether the RPC credentials are mounted (komodod and the chains write their conf from them).
        var secrets: Bool
    }

    /// The services of one node and what they share: the network namespace and komodod's data volume.
    struct Node {
        var name: String
        var members: [Member] = []
        var volumes: [(name: String, size: String)] = []
        var options: Options

        init(_ services: [Service], _ options: Options) {
            name = label(options.node)
            self.options = options
            let komodoHome = "/home/komodo"
            var chainMounts: [(volume: String, relative: String)] = []
            for service in services {
                let container = label(service.name)
                var member = Member(
                    service: service, container: container, mounts: [], probe: nil, grace: 60, secrets: false)
                if service.isKomodo {
                    // Every Komodo container sees KMD's data (and komodo.conf) where komodod keeps it.
                    member.mounts.append(Mount(volume: "komodo-data", path: service.home + "/.komodo"))
                    member.grace = 300
                    member.secrets = true
                    member.probe = ["komodo-cli", "getconnectioncount"]
                    if let chain = service.chain {
                        let standard = service.home + "/.komodo/" + chain
                        let datadir = service.labels["io.komodo.datadir"] ?? standard
                        member.mounts.append(Mount(volume: container + "-data", path: datadir))
                        member.probe =
                            ["komodo-cli", "-ac_name=" + chain]
                            + (datadir == standard ? [] : ["-datadir=" + datadir]) + ["getconnectioncount"]
                        if datadir.hasPrefix(komodoHome + "/") {
                            chainMounts.append((container + "-data", String(datadir.dropFirst(komodoHome.count))))
                        }
                    }
                } else {
                    for path in service.volumes {
                        let volume = service.volumes.count == 1 ? container + "-data" : container + "-" + slug(path)
                        member.mounts.append(Mount(volume: volume, path: path))
                    }
                    if thirdPartyDaemons.contains(service.name) {
                        member.probe = [String(service.name.dropLast()) + "-cli", "getconnectioncount"]
                        member.grace = 300
                    }
                }
                members.append(member)
            }
            // iguana reads the daemons' confs under its own $HOME/.komodo. Writable only so that the runtime can
            // create the nested mount points; iguana does not write there.
            for index in members.indices where members[index].service.name == "iguana" && !chainMounts.isEmpty {
                let home = members[index].service.home
                members[index].mounts.append(Mount(volume: "komodo-data", path: home + "/.komodo"))
                for chain in chainMounts {
                    members[index].mounts.append(Mount(volume: chain.volume, path: home + chain.relative))
                }
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

        /// Every member's P2P ports: published once, on the namespace they share.
        var p2pPorts: [Port] { Array(Set(members.flatMap(\.service.p2pPorts))).sorted() }
        var grace: Int { members.map(\.grace).max() ?? 60 }
        var usesSecrets: Bool { members.contains(where: \.secrets) }
    }

    static let secretFiles = ["komodo-rpcuser", "komodo-rpcpassword"]

    static func compose(_ document: ReleaseDocument, _ node: Node) -> String {
        var out = header(document, .compose)
        out += """
            # The services share the first one's network namespace (network_mode: service:…), so they reach each
            # other's RPC on 127.0.0.1 as on one host. Only P2P ports are published; RPC binds 127.0.0.1.
            # Before `up`, put the RPC credentials in ./secrets/komodo-rpcuser and ./secrets/komodo-rpcpassword.

            """
        out += "name: \(q(node.name))\nservices:\n"
        let owner = node.members.first?.container
        for member in node.members {
            let service = member.service
            out += "  \(q(member.container)):\n"
            out += "    image: \(q(service.reference))\n"
            out += "    restart: \"unless-stopped\"\n"
            if let signal = service.stopSignal { out += "    stop_signal: \(q(signal))\n" }
            out += "    stop_grace_period: \"\(member.grace)s\"\n"
            if member.container == owner {
                if !node.p2pPorts.isEmpty {
                    out += "    ports:\n"
                    for port in node.p2pPorts { out += "      - \(q("\(port.number):\(port.number)/\(port.proto)"))\n" }
                }
            } else if let owner {
                out += "    network_mode: \(q("service:" + owner))\n"
                out += "    depends_on: \(list([owner]))\n"
            }
            if !member.mounts.isEmpty {
                out += "    volumes:\n"
                for mount in member.mounts { out += "      - \(q("\(mount.volume):\(mount.path)"))\n" }
            }
            if member.secrets { out += "    secrets: \(list(secretFiles))\n" }
            // iguana reads the daemons' confs, which komodod writes group 0 (the images' data directories are
            // group 0 and setgid); Kubernetes gets the same from fsGroup.
            if member.service.name == "iguana" && node.usesSecrets { out += "    group_add: [\"0\"]\n" }
            if let probe = member.probe {
                out += "    healthcheck:\n      test: \(list(["CMD"] + probe))\n"
                out +=
                    "      interval: \"60s\"\n      timeout: \"30s\"\n      retries: 5\n      start_period: \"3600s\"\n"
            }
        }
        if !node.volumes.isEmpty {
            out += "volumes:\n"
            for volume in node.volumes { out += "  \(q(volume.name)): {}\n" }
        }
        if node.usesSecrets {
            out += "secrets:\n"
            for file in secretFiles { out += "  \(q(file)):\n    file: \(q("./secrets/" + file))\n" }
        }
        return out
    }
}
