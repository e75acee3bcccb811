import Foundation
import KilnSign

extension DeployRefs {
    /// One StatefulSet (one Pod) per daemon, so that one chain's restart, image change or readiness never touches
    /// another's. The daemons still reach each other's RPC on 127.0.0.1 only: every Pod uses the node's network
    /// namespace (`hostNetwork`), and pod affinity keeps them on the node that runs komodod (the first
    /// member). RPC binds 127.0.0.1, so it is on no network interface; P2P ports are the node's own
    /// (`hostPort`). Each StatefulSet has a headless Service for its identity; no Service names an RPC port.
    /// komodod's wallet is backed up by a CronJob (komodo-backup through RPC).
    static func kubernetes(_ document: ReleaseDocument, _ node: Node) -> String {
        var documents: [YAMLValue] = []
        let owner = node.members.first.map { objectName(node, $0) }
        for member in node.members {
            let name = objectName(node, member)
            let selector: YAMLValue = ["app.kubernetes.io/name": .string(name)]
            documents.append(object("v1", "Service", name, node, spec: ["clusterIP": "None", "selector": selector]))
            let claims: [YAMLValue] = node.volumes.filter { volume in
                member.mounts.contains { $0.volume == volume.name }
            }
            .map { volume in
                let resources: YAMLValue = ["requests": ["storage": .string(volume.size)]]
                let spec: YAMLValue = ["accessModes": .flow(["ReadWriteOnce"]), "resources": resources]
                return ["metadata": ["name": .string(volume.name)], "spec": spec]
            }
            let pod = podSpec(node, member, owner: name == owner ? nil : owner)
            let template: YAMLValue = ["metadata": ["labels": labels(node, name)], "spec": pod]
            let spec: YAMLValue = [
                "serviceName": .string(name), "replicas": 1, "selector": ["matchLabels": selector],
                "template": template, "volumeClaimTemplates": claims.isEmpty ? nil : .list(claims),
            ]
            documents.append(object("apps/v1", "StatefulSet", name, node, spec: spec))
            if member.service.isKomodod { documents.append(backupJob(node, member, owner: name)) }
        }
        var comments = [header(document, .kubernetes)]
        let sets = node.secretSets
        if !sets.isEmpty {
            comments.append("Create the secrets first (the daemons write their RPC conf from them; iguana its copies):")
            for set in sets {
                let from = set.files.map { "--from-file=\($0)=FILE" }.joined(separator: " ")
                comments.append("  kubectl create secret generic \(set.kubernetesName) \(from)")
            }
        }
        if node.sharesHostNetwork {
            comments.append(
                "hostNetwork: the Pods share the Kubernetes node's network namespace (RPC on its 127.0.0.1 only),")
            comments.append("which the namespace's Pod Security level must allow (privileged).")
        }
        return YAMLFile(comments: comments, documents: documents, markDocuments: true).text
    }

    static func objectName(_ node: Node, _ member: Member) -> String {
        node.members.count == 1 && node.name == member.container
            ? node.name : DNSLabel.label(node.name + "-" + member.container)
    }

    static func labels(_ node: Node, _ name: String) -> YAMLValue {
        ["app.kubernetes.io/name": .string(name), "app.kubernetes.io/part-of": .string(node.name)]
    }

    static func object(_ apiVersion: String, _ kind: String, _ name: String, _ node: Node, spec: YAMLValue)
        -> YAMLValue
    {
        let metadata: YAMLValue = ["name": .string(name), "labels": labels(node, name)]
        return ["apiVersion": .string(apiVersion), "kind": .string(kind), "metadata": metadata, "spec": spec]
    }

    /// What every Pod of the node shares: the node's network namespace, no service account token, a grace
    /// period that covers the daemon's flush, fsGroup for its volumes.
    static func podSpec(
        _ node: Node, _ member: Member, owner: String?, restartPolicy: String? = nil, command: [String]? = nil
    ) -> YAMLValue {
        let host = node.sharesHostNetwork
        var affinity: YAMLValue?
        if let owner, host {
            let term: YAMLValue = [
                "labelSelector": ["matchLabels": ["app.kubernetes.io/name": .string(owner)]],
                "topologyKey": "kubernetes.io/hostname",
            ]
            affinity = ["podAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": [term]]]
        }
        // Volumes group-owned by fsGroup (setgid) so the image's uid can use them; the images also make their
        // data directories group-0-writable for platforms that pick the uid (OpenShift).
        let security: YAMLValue = [
            "fsGroup": .int(member.service.uid.flatMap { $0 == 0 ? nil : $0 } ?? 3003),
            "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": ["type": "RuntimeDefault"],
        ]
        return [
            "restartPolicy": restartPolicy.map(YAMLValue.string),
            "hostNetwork": host ? true : nil, "dnsPolicy": host ? "ClusterFirstWithHostNet" : nil,
            // komodod flushes its block index and wallet on SIGINT/SIGTERM, which can take minutes.
            "terminationGracePeriodSeconds": .int(member.grace),
            // The node never talks to the Kubernetes API.
            "automountServiceAccountToken": false, "enableServiceLinks": false,
            "affinity": affinity, "securityContext": security,
            "containers": [container(member, command: command)], "volumes": podVolumes(member),
        ]
    }

    static func podVolumes(_ member: Member) -> YAMLValue? {
        var volumes: [YAMLValue] = member.scratch.indices.map { index in
            ["name": "scratch-\(index)", "emptyDir": ["medium": "Memory", "sizeLimit": "64Mi"]]
        }
        if !member.secrets.isEmpty {
            // One directory with every key, as compose's /run/secrets has them.
            let sources: [YAMLValue] = member.secrets.map { set in
                [
                    "secret": [
                        "name": .string(set.kubernetesName), "optional": set.optional || set == .notary ? true : nil,
                    ]
                ]
            }
            volumes.append(["name": "secrets", "projected": ["defaultMode": 288, "sources": .list(sources)]])
        }
        return volumes.isEmpty ? nil : .list(volumes)
    }

    static let secretsPath = "/run/kiln-secrets"

    static func container(_ member: Member, command: [String]? = nil) -> YAMLValue {
        let ports: [YAMLValue] = (command == nil ? member.p2pPorts : []).map { port in
            [
                "name": "p2p-\(port.number)", "containerPort": .int(port.number), "hostPort": .int(port.number),
                "protocol": .string(port.proto.uppercased()),
            ]
        }
        var environment = member.environment
        if let variable = member.secretsVariable, !member.secrets.isEmpty {
            environment.append((variable, secretsPath))
        }
        let env: [YAMLValue] = environment.map { ["name": .string($0.0), "value": .string($0.1)] }
        var resources: YAMLValue?
        if let wanted = member.resources {
            let requests: YAMLValue = ["cpu": .string(wanted.cpu), "memory": .string(wanted.memory)]
            resources = ["requests": requests, "limits": ["memory": .string(wanted.memoryLimit)]]
        }
        var mounts: [YAMLValue] = member.scratch.enumerated().map { index, path in
            ["name": "scratch-\(index)", "mountPath": .string(path)]
        }
        mounts += member.mounts.map {
            ["name": .string($0.volume), "mountPath": .string($0.path), "readOnly": $0.readOnly ? true : nil]
        }
        if !member.secrets.isEmpty {
            // Not /run/secrets: the service account token is mounted under /var/run/secrets.
            mounts.append(["name": "secrets", "mountPath": .string(secretsPath), "readOnly": true])
        }
        let probes = command == nil ? Self.probes(member) : nil
        return [
            "name": .string(member.container), "image": .string(member.service.reference),
            "command": command.map(YAMLValue.flow), "ports": ports.isEmpty ? nil : .list(ports),
            "env": env.isEmpty ? nil : .list(env), "resources": resources, "securityContext": securityContext(member),
            "volumeMounts": mounts.isEmpty ? nil : .list(mounts),
            "startupProbe": probes?.startup, "livenessProbe": probes?.liveness, "readinessProbe": probes?.readiness,
        ]
    }

    static func securityContext(_ member: Member) -> YAMLValue {
        // A named user cannot be checked by the kubelet; the platform's images use numeric ones.
        let uid = member.service.uid.flatMap { $0 == 0 ? nil : $0 }
        return [
            "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": member.readOnlyRoot ? true : nil,
            "runAsNonRoot": uid == nil ? nil : true, "runAsUser": uid.map(YAMLValue.int),
            "runAsGroup": uid == nil ? nil : 0, "capabilities": ["drop": .flow(["ALL"])],
        ]
    }

    /// Liveness is a TCP connection to the RPC port on the loopback (the kubelet shares it: hostNetwork), so
    /// a daemon busy in a rescan or reindex (holding cs_main) is not restarted; readiness goes through RPC.
    /// Loading the block index can take most of an hour: the startup probe allows that much.
    static func probes(_ member: Member) -> (startup: YAMLValue, liveness: YAMLValue, readiness: YAMLValue)? {
        guard let port = member.live else { return nil }
        let tcp: (String, YAMLValue) = ("tcpSocket", ["host": "127.0.0.1", "port": .int(port)])
        func probe(_ check: (String, YAMLValue), period: Int, timeout: Int, failures: Int) -> YAMLValue {
            .map([
                check, ("periodSeconds", .int(period)), ("timeoutSeconds", .int(timeout)),
                ("failureThreshold", .int(failures)),
            ])
        }
        let ready = member.ready.map { ("exec", ["command": .flow($0)] as YAMLValue) } ?? tcp
        return (
            probe(tcp, period: 30, timeout: 10, failures: 120), probe(tcp, period: 60, timeout: 10, failures: 5),
            probe(ready, period: 30, timeout: 30, failures: 3)
        )
    }

    /// komodod's wallet, daily: `komodo-backup` in a Pod beside komodod (same node, its loopback) asks
    /// komodod over RPC to copy wallet.dat into its export directory, the komodo-backup volume.
    static func backupJob(_ node: Node, _ komodod: Member, owner: String) -> YAMLValue {
        let name = DNSLabel.label(owner + "-backup")
        var job = Member(service: komodod.service, container: "backup")
        job.secrets = komodod.secrets
        job.secretsVariable = komodod.secretsVariable
        job.readOnlyRoot = true
        // komodo-cli reads the RPC conf komodo-backup writes there from the secret.
        job.scratch = [komodod.service.home + "/.komodo"]
        let pod = podSpec(
            node, job, owner: owner, restartPolicy: "OnFailure", command: ["/usr/local/bin/komodo-backup"])
        let jobTemplate: YAMLValue = ["spec": ["backoffLimit": 2, "template": ["spec": pod]]]
        let spec: YAMLValue = [
            "schedule": "17 3 * * *", "concurrencyPolicy": "Forbid", "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3, "jobTemplate": jobTemplate,
        ]
        return object("batch/v1", "CronJob", name, node, spec: spec)
    }
}
