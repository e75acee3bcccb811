import Foundation

extension DeployRefs {
    /// One StatefulSet (one Pod) per daemon, so that one chain's restart, image change or readiness never touches
    /// another's. The daemons still reach each other's RPC on 127.0.0.1 only: every Pod uses the node's network
    /// namespace (`hostNetwork`), and pod affinity keeps them on the node that runs komodod (the first
    /// member). RPC binds 127.0.0.1, so it is on no network interface; P2P ports are the node's own
    /// (`hostPort`). Each StatefulSet has a headless Service for its identity; no Service names an RPC port.
    /// komodod's wallet is backed up by a CronJob (komodo-backup through RPC).
    static func kubernetes(_ document: ReleaseDocument, _ node: Node) -> String {
        var docs: [String] = []
        let owner = node.members.first.map { objectName(node, $0) }
        for member in node.members {
            let name = objectName(node, member)
            let tags = labels(node, name)
            var service = "apiVersion: v1\nkind: Service\nmetadata:\n  name: \(q(name))\n  labels:\n\(tags("    "))"
            service += "spec:\n  clusterIP: None\n  selector:\n    app.kubernetes.io/name: \(q(name))\n"
            docs.append(service)

            var set =
                "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: \(q(name))\n  labels:\n\(tags("    "))"
            set += "spec:\n  serviceName: \(q(name))\n  replicas: 1\n"
            set += "  selector:\n    matchLabels:\n      app.kubernetes.io/name: \(q(name))\n"
            set += "  template:\n    metadata:\n      labels:\n\(tags("        "))    spec:\n"
            set += podSpec(node, member, owner: name == owner ? nil : owner, indent: "      ")
            set += "      containers:\n"
            set += container(member, indent: "        ")
            set += podVolumes(member, indent: "      ")
            let claims = member.mounts.map(\.volume)
            if !claims.isEmpty {
                set += "  volumeClaimTemplates:\n"
                for volume in node.volumes where claims.contains(volume.name) {
                    set += "    - metadata:\n        name: \(q(volume.name))\n"
                    set += "      spec:\n        accessModes: [\"ReadWriteOnce\"]\n"
                    set += "        resources:\n          requests:\n            storage: \(q(volume.size))\n"
                }
            }
            docs.append(set)
            if member.service.isKomodod { docs.append(backupJob(node, member, owner: name)) }
        }
        var text = header(document, .kubernetes)
        let sets = node.secretSets
        if !sets.isEmpty {
            text += "# Create the secrets first (the daemons write their RPC conf from them; iguana its copies):\n"
            for set in sets {
                let from = set.files.map { "--from-file=\($0)=FILE" }.joined(separator: " ")
                text += "#   kubectl create secret generic \(set.kubernetesName) \(from)\n"
            }
        }
        if node.sharesHostNetwork {
            text +=
                "# hostNetwork: the Pods share the Kubernetes node's network namespace (RPC on its 127.0.0.1 only),\n"
            text += "# which the namespace's Pod Security level must allow (privileged).\n"
        }
        return text + docs.map { "---\n" + $0 }.joined()
    }

    static func objectName(_ node: Node, _ member: Member) -> String {
        node.members.count == 1 && node.name == member.container
            ? node.name : label(node.name + "-" + member.container)
    }

    static func labels(_ node: Node, _ name: String) -> (String) -> String {
        { indent in
            "\(indent)app.kubernetes.io/name: \(q(name))\n\(indent)app.kubernetes.io/part-of: \(q(node.name))\n"
        }
    }

    /// What every Pod of the node shares: the node's network namespace, no service account token, a grace
    /// period that covers the daemon's flush, fsGroup for its volumes.
    static func podSpec(_ node: Node, _ member: Member, owner: String?, indent: String) -> String {
        var out = ""
        if node.sharesHostNetwork {
            out += "\(indent)hostNetwork: true\n\(indent)dnsPolicy: \"ClusterFirstWithHostNet\"\n"
        }
        // komodod flushes its block index and wallet on SIGINT/SIGTERM, which can take minutes.
        out += "\(indent)terminationGracePeriodSeconds: \(member.grace)\n"
        // The node never talks to the Kubernetes API.
        out += "\(indent)automountServiceAccountToken: false\n\(indent)enableServiceLinks: false\n"
        if let owner, node.sharesHostNetwork {
            out += "\(indent)affinity:\n\(indent)  podAffinity:\n"
            out += "\(indent)    requiredDuringSchedulingIgnoredDuringExecution:\n"
            out += "\(indent)      - labelSelector:\n\(indent)          matchLabels:\n"
            out += "\(indent)            app.kubernetes.io/name: \(q(owner))\n"
            out += "\(indent)        topologyKey: \"kubernetes.io/hostname\"\n"
        }
        // Volumes group-owned by fsGroup (setgid) so the image's uid can use them; the images also make their
        // data directories group-0-writable for platforms that pick the uid (OpenShift).
        out += "\(indent)securityContext:\n"
        out += "\(indent)  fsGroup: \(member.service.uid.flatMap { $0 == 0 ? nil : $0 } ?? 3003)\n"
        out += "\(indent)  fsGroupChangePolicy: \"OnRootMismatch\"\n"
        out += "\(indent)  seccompProfile:\n\(indent)    type: \"RuntimeDefault\"\n"
        return out
    }

    static func podVolumes(_ member: Member, indent: String) -> String {
        var out = ""
        for (index, _) in member.scratch.enumerated() {
            out += "\(indent)  - name: \(q("scratch-\(index)"))\n\(indent)    emptyDir:\n"
            out += "\(indent)      medium: \"Memory\"\n\(indent)      sizeLimit: \"64Mi\"\n"
        }
        if !member.secrets.isEmpty {
            // One directory with every key, as compose's /run/secrets has them.
            out += "\(indent)  - name: \"secrets\"\n\(indent)    projected:\n\(indent)      defaultMode: 288\n"
            out += "\(indent)      sources:\n"
            for set in member.secrets {
                out += "\(indent)        - secret:\n\(indent)            name: \(q(set.kubernetesName))\n"
                if set.optional || set == .notary { out += "\(indent)            optional: true\n" }
            }
        }
        return out.isEmpty ? "" : "\(indent)volumes:\n" + out
    }

    static let secretsPath = "/run/kiln-secrets"

    static func container(_ member: Member, indent: String, command: [String]? = nil) -> String {
        let service = member.service
        var out = "\(indent)- name: \(q(member.container))\n\(indent)  image: \(q(service.reference))\n"
        if let command { out += "\(indent)  command: \(list(command))\n" }
        if command == nil && !member.p2pPorts.isEmpty {
            out += "\(indent)  ports:\n"
            for port in member.p2pPorts {
                out += "\(indent)    - name: \(q("p2p-\(port.number)"))\n"
                out += "\(indent)      containerPort: \(port.number)\n\(indent)      hostPort: \(port.number)\n"
                out += "\(indent)      protocol: \(q(port.proto.uppercased()))\n"
            }
        }
        var environment = member.environment
        if let variable = member.secretsVariable, !member.secrets.isEmpty {
            environment.append((variable, secretsPath))
        }
        if !environment.isEmpty {
            out += "\(indent)  env:\n"
            for (key, value) in environment {
                out += "\(indent)    - name: \(q(key))\n\(indent)      value: \(q(value))\n"
            }
        }
        if let resources = member.resources {
            out += "\(indent)  resources:\n\(indent)    requests:\n"
            out += "\(indent)      cpu: \(q(resources.cpu))\n\(indent)      memory: \(q(resources.memory))\n"
            out += "\(indent)    limits:\n\(indent)      memory: \(q(resources.memoryLimit))\n"
        }
        out += "\(indent)  securityContext:\n\(indent)    allowPrivilegeEscalation: false\n"
        if member.readOnlyRoot { out += "\(indent)    readOnlyRootFilesystem: true\n" }
        // A named user cannot be checked by the kubelet; the platform's images use numeric ones.
        if let uid = service.uid, uid != 0 {
            out += "\(indent)    runAsNonRoot: true\n\(indent)    runAsUser: \(uid)\n\(indent)    runAsGroup: 0\n"
        }
        out += "\(indent)    capabilities:\n\(indent)      drop: [\"ALL\"]\n"
        if !member.mounts.isEmpty || !member.scratch.isEmpty || !member.secrets.isEmpty {
            out += "\(indent)  volumeMounts:\n"
            for (index, path) in member.scratch.enumerated() {
                out += "\(indent)    - name: \(q("scratch-\(index)"))\n\(indent)      mountPath: \(q(path))\n"
            }
            for mount in member.mounts {
                out += "\(indent)    - name: \(q(mount.volume))\n\(indent)      mountPath: \(q(mount.path))\n"
                if mount.readOnly { out += "\(indent)      readOnly: true\n" }
            }
            if !member.secrets.isEmpty {
                // Not /run/secrets: the service account token is mounted under /var/run/secrets.
                out += "\(indent)    - name: \"secrets\"\n\(indent)      mountPath: \(q(secretsPath))\n"
                out += "\(indent)      readOnly: true\n"
            }
        }
        guard command == nil else { return out }
        // Liveness is a TCP connection to the RPC port on the loopback (the kubelet shares it: hostNetwork), so
        // a daemon busy in a rescan or reindex (holding cs_main) is not restarted; readiness goes through RPC.
        // Loading the block index can take most of an hour: the startup probe allows that much.
        if let port = member.live {
            let tcp = "tcpSocket:\n\(indent)      host: \"127.0.0.1\"\n\(indent)      port: \(port)\n"
            out += "\(indent)  startupProbe:\n\(indent)    \(tcp)"
            out +=
                "\(indent)    periodSeconds: 30\n\(indent)    timeoutSeconds: 10\n\(indent)    failureThreshold: 120\n"
            out += "\(indent)  livenessProbe:\n\(indent)    \(tcp)"
            out += "\(indent)    periodSeconds: 60\n\(indent)    timeoutSeconds: 10\n\(indent)    failureThreshold: 5\n"
            out += "\(indent)  readinessProbe:\n"
            if let ready = member.ready {
                out += "\(indent)    exec:\n\(indent)      command: \(list(ready))\n"
            } else {
                out += "\(indent)    \(tcp)"
            }
            out += "\(indent)    periodSeconds: 30\n\(indent)    timeoutSeconds: 30\n\(indent)    failureThreshold: 3\n"
        }
        return out
    }

    /// komodod's wallet, daily: `komodo-backup` in a Pod beside komodod (same node, its loopback) asks
    /// komodod over RPC to copy wallet.dat into its export directory, the komodo-backup volume.
    static func backupJob(_ node: Node, _ komodod: Member, owner: String) -> String {
        let name = label(owner + "-backup")
        var job = Member(service: komodod.service, container: "backup")
        job.secrets = komodod.secrets
        job.secretsVariable = komodod.secretsVariable
        job.readOnlyRoot = true
        // komodo-cli reads the RPC conf komodo-backup writes there from the secret.
        job.scratch = [komodod.service.home + "/.komodo"]
        var out = "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: \(q(name))\n  labels:\n"
        out += labels(node, name)("    ")
        out += "spec:\n  schedule: \"17 3 * * *\"\n  concurrencyPolicy: \"Forbid\"\n"
        out += "  successfulJobsHistoryLimit: 3\n  failedJobsHistoryLimit: 3\n"
        out += "  jobTemplate:\n    spec:\n      backoffLimit: 2\n      template:\n        spec:\n"
        out += "          restartPolicy: \"OnFailure\"\n"
        out += podSpec(node, job, owner: owner, indent: "          ")
        out += "          containers:\n"
        out += container(job, indent: "            ", command: ["/usr/local/bin/komodo-backup"])
        out += podVolumes(job, indent: "          ")
        return out
    }
}
