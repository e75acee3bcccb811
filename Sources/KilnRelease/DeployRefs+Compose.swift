import Foundation
import KilnSign

extension DeployRefs {
    /// What the compose file's header says about running it.
    static let composeNotes = [
        "The services share the first one's network namespace (network_mode: service:…), so they reach each",
        "other's RPC on 127.0.0.1 as on one host; RPC binds 127.0.0.1 and is never published. No service",
        "mounts another's data volume.",
        "",
        "Stopping: stop_grace_period is each container's stop timeout. podman-compose 1.6.0 uses it for its",
        "own stop, down and restart only, and creates every container with podman's default of 10 s, which a",
        "plain `podman stop`, a restart policy or a host shutdown then applies. Bring the node up with",
        "  podman-compose --podman-run-args=--stop-timeout=300 up -d",
        "(check: podman inspect --format '{{.Config.StopTimeout}}' CONTAINER).",
    ]

    static func compose(_ document: ReleaseDocument, _ node: Node) -> String {
        var comments = [header(document, .compose)] + composeNotes
        // The gate on nodes whose podman cannot check sigstore signatures (Debian 12's refuses every image under
        // a sigstoreSigned policy): the file itself names the commands, one per image it runs.
        comments.append(
            "A signed release: first check every image's signature and provenance with the release's public")
        comments.append(
            "key, and bring the node up only if every check exits 0 (where podman cannot check them, Debian 12):")
        for member in node.members { comments.append("  kiln verify \(member.service.reference) --key release.pub") }
        let files = node.secretSets.flatMap(\.files)
        if !files.isEmpty {
            comments.append("Before `up`, put the secrets in ./secrets/: \(files.joined(separator: ", ")).")
        }
        let owner = node.members.first?.container
        let services = node.members.map { ($0.container, composeService($0, node, owner: owner)) }
        let volumes = node.volumes.map { ($0.name, YAMLValue.map([])) }
        let secrets = files.map { ($0, ["file": .string("./secrets/" + $0)] as YAMLValue) }
        let file: YAMLValue = [
            "name": .string(node.name), "services": .map(services), "volumes": volumes.isEmpty ? nil : .map(volumes),
            "secrets": secrets.isEmpty ? nil : .map(secrets),
        ]
        return YAMLFile(comments: comments, documents: [file]).text
    }

    /// One service; the first (`owner`) publishes every P2P port of the node, the others join its namespace.
    static func composeService(_ member: Member, _ node: Node, owner: String?) -> YAMLValue {
        let joined = member.container == owner ? nil : owner
        let ports = joined == nil ? node.p2pPorts.map { "\($0.number):\($0.number)/\($0.proto)" } : []
        let mounts = member.mounts.map { "\($0.volume):\($0.path)" + ($0.readOnly ? ":ro" : "") }
        let secrets = member.secrets.flatMap(\.files)
        let environment = member.environment.map { ($0.0, YAMLValue.string($0.1)) }
        // Readiness through RPC; podman runs it on its own timer and restarts nothing.
        let healthcheck = member.ready.map { ready -> YAMLValue in
            [
                "test": .flow(["CMD"] + ready), "interval": "60s", "timeout": "30s", "retries": 5,
                "start_period": "3600s",
            ]
        }
        let deploy = member.resources.map { wanted -> YAMLValue in
            let limits: YAMLValue = ["memory": .string(composeBytes(wanted.memoryLimit))]
            let reservations: YAMLValue = [
                "cpus": .string(cpus(wanted.cpu)), "memory": .string(composeBytes(wanted.memory)),
            ]
            return ["resources": ["limits": limits, "reservations": reservations]]
        }
        // podman's json-file (k8s-file) driver rotates at max-size.
        let logging: YAMLValue = ["driver": "json-file", "options": ["max-size": "20m", "max-file": "5"]]
        return [
            "image": .string(member.service.reference), "restart": "unless-stopped",
            "stop_signal": member.service.stopSignal.map(YAMLValue.string), "stop_grace_period": "\(member.grace)s",
            "ports": ports.isEmpty ? nil : .strings(ports), "network_mode": joined.map { .string("service:" + $0) },
            "depends_on": joined.map { .flow([$0]) }, "read_only": member.readOnlyRoot ? true : nil,
            "tmpfs": member.scratch.isEmpty ? nil : .strings(member.scratch.map { $0 + ":mode=1777" }),
            "volumes": mounts.isEmpty ? nil : .strings(mounts), "secrets": secrets.isEmpty ? nil : .flow(secrets),
            "environment": environment.isEmpty ? nil : .map(environment), "healthcheck": healthcheck,
            "deploy": deploy, "logging": logging,
        ]
    }

    /// `250m` → `0.25`, `1` → `1`: compose's CPU count.
    static func cpus(_ quantity: String) -> String {
        guard quantity.hasSuffix("m"), let milli = Int(quantity.dropLast()) else { return quantity }
        return String(format: "%g", Double(milli) / 1000)
    }
}
