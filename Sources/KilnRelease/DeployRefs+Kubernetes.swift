import Foundation

extension DeployRefs {
    /// The node as one StatefulSet (one Pod: its containers share localhost), a headless Service for its
    /// identity and a LoadBalancer Service for its P2P ports. No Service names an RPC port.
    static func kubernetes(_ document: ReleaseDocument, _ node: Node) -> String {
        let name = node.name
        let selector = "app.kubernetes.io/name: \(q(name))\n"
        var docs: [String] = []
        var ports = ""
        for port in node.p2pPorts {
            ports += "    - name: \(q("p2p-\(port.number)"))\n      port: \(port.number)\n"
            ports += "      targetPort: \(port.number)\n      protocol: \(q(port.proto.uppercased()))\n"
        }
        for (service, type) in [(name, "None"), (name + "-p2p", "LoadBalancer")] where !ports.isEmpty || type == "None"
        {
            var doc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: \(q(service))\n  labels:\n    \(selector)"
            doc += "spec:\n"
            doc += type == "None" ? "  clusterIP: None\n" : "  type: \"LoadBalancer\"\n"
            doc += "  selector:\n    \(selector)"
            if !ports.isEmpty { doc += "  ports:\n" + ports }
            docs.append(doc)
        }

        var set = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: \(q(name))\n  labels:\n    \(selector)"
        set += "spec:\n  serviceName: \(q(name))\n  replicas: 1\n  selector:\n    matchLabels:\n      \(selector)"
        set += "  template:\n    metadata:\n      labels:\n        \(selector)"
        set += "    spec:\n"
        // komodod flushes its block index on SIGINT/SIGTERM, which can take minutes.
        set += "      terminationGracePeriodSeconds: \(node.grace)\n"
        // The node never talks to the Kubernetes API.
        set += "      automountServiceAccountToken: false\n"
        // Volumes group-owned by fsGroup (setgid) so every container's uid can use them; the images also
        // make their data directories group-0-writable for platforms that pick the uid (OpenShift).
        set += "      securityContext:\n        fsGroup: 3003\n"
        set += "        fsGroupChangePolicy: \"OnRootMismatch\"\n"
        set += "      containers:\n"
        for member in node.members { set += container(member) }
        if node.usesSecrets {
            // Created by the operator, never written here:
            // kubectl create secret generic komodo-rpc --from-file=komodo-rpcuser=… --from-file=komodo-rpcpassword=…
            set += "      volumes:\n        - name: \"komodo-rpc\"\n"
            set += "          secret:\n            secretName: \"komodo-rpc\"\n            defaultMode: 288\n"
        }
        if !node.volumes.isEmpty {
            set += "  volumeClaimTemplates:\n"
            for volume in node.volumes {
                set += "    - metadata:\n        name: \(q(volume.name))\n"
                set += "      spec:\n        accessModes: [\"ReadWriteOnce\"]\n"
                set += "        resources:\n          requests:\n            storage: \(q(volume.size))\n"
            }
        }
        docs.append(set)
        var text = header(document, .kubernetes)
        text += "# Create the RPC credentials first (komodod and the chains write their conf from them):\n"
        text +=
            "#   kubectl create secret generic komodo-rpc --from-file=komodo-rpcuser=FILE --from-file=komodo-rpcpassword=FILE\n"
        return text + docs.map { "---\n" + $0 }.joined()
    }

    static func container(_ member: Member) -> String {
        let service = member.service
        var out = "        - name: \(q(member.container))\n          image: \(q(service.reference))\n"
        if !service.p2pPorts.isEmpty {
            out += "          ports:\n"
            for port in service.p2pPorts {
                out += "            - name: \(q("p2p-\(port.number)"))\n"
                out += "              containerPort: \(port.number)\n"
                out += "              protocol: \(q(port.proto.uppercased()))\n"
            }
        }
        if member.secrets {
            out +=
                "          env:\n            - name: \"KOMODO_RPC_SECRETS\"\n              value: \"/run/komodo-rpc\"\n"
        }
        out += "          securityContext:\n            allowPrivilegeEscalation: false\n"
        // A named user cannot be checked by the kubelet; the Komodo images use numeric ones.
        if let uid = service.uid, uid != 0 { out += "            runAsNonRoot: true\n            runAsUser: \(uid)\n" }
        out += "            capabilities:\n              drop: [\"ALL\"]\n"
        if member.secrets || !member.mounts.isEmpty {
            out += "          volumeMounts:\n"
            for mount in member.mounts {
                out += "            - name: \(q(mount.volume))\n              mountPath: \(q(mount.path))\n"
            }
            if member.secrets {
                // Not /run/secrets: the service account token is mounted under /var/run/secrets.
                out += "            - name: \"komodo-rpc\"\n              mountPath: \"/run/komodo-rpc\"\n"
                out += "              readOnly: true\n"
            }
        }
        if let probe = member.probe {
            // Loading the block index can take most of an hour: the startup probe allows that much, then
            // readiness and liveness take over.
            for (kind, period, failures) in [
                ("startupProbe", 30, 120), ("readinessProbe", 30, 3), ("livenessProbe", 60, 5),
            ] {
                out += "          \(kind):\n            exec:\n              command: \(list(probe))\n"
                out += "            periodSeconds: \(period)\n            timeoutSeconds: 30\n"
                out += "            failureThreshold: \(failures)\n"
            }
        }
        return out
    }
}
