import Foundation
import KilnOCI
import KilnRelease
import KilnTestSupport
import Testing
import Yams

/// `kiln deploy-refs` as a node: the configs below are the real Komodo images' (recipes/), the files are
/// checked field by field and by validators no one here wrote (kubernetes-validate --strict, the
/// compose-spec schema). KomodoRecipesTests brings such a node up with podman.
@Suite struct DeployNodeTests {
    static func config(
        entrypoint: [String]? = nil, cmd: [String]? = nil, ports: [String] = [], volumes: [String] = [],
        labels: [String: String] = [:], home: String? = nil, signal: String? = nil
    ) -> ImageConfig {
        var exec = ImageConfig.ExecutionConfig()
        exec.entrypoint = entrypoint
        exec.cmd = cmd
        exec.exposedPorts = ports.isEmpty ? nil : Dictionary(uniqueKeysWithValues: ports.map { ($0, EmptyObject()) })
        exec.volumes = volumes.isEmpty ? nil : Dictionary(uniqueKeysWithValues: volumes.map { ($0, EmptyObject()) })
        exec.labels = labels.isEmpty ? nil : labels
        exec.env = home.map { ["HOME=" + $0] }
        exec.workingDir = home
        exec.stopSignal = signal
        exec.user = home == "/home/komodo" ? "3003" : nil
        return ImageConfig(platform: .linuxAMD64, config: exec)
    }

    static func chain(_ symbol: String, _ p2p: Int, datadir: String? = nil) -> ImageConfig {
        config(
            entrypoint: ["/usr/local/bin/komodo-start"], cmd: ["-printtoconsole", "-ac_name=" + symbol],
            ports: ["\(p2p)/tcp", "\(p2p + 1)/tcp"], volumes: ["/home/komodo/.komodo"],
            labels: [
                "io.komodo.assetchain.name": symbol, "io.komodo.p2p-port": "\(p2p)", "io.komodo.rpc-port": "\(p2p + 1)",
                "io.komodo.datadir": datadir ?? "/home/komodo/.komodo/" + symbol,
            ], home: "/home/komodo", signal: "SIGINT")
    }

    static let services: [DeployRefs.Service] = [
        ("debian-runtime", config()),
        (
            "komodod",
            config(
                entrypoint: ["/usr/local/bin/komodo-start"], cmd: ["-printtoconsole"], ports: ["7770/tcp", "7771/tcp"],
                volumes: ["/home/komodo/.komodo"],
                labels: ["io.komodo.p2p-port": "7770", "io.komodo.rpc-port": "7771"],
                home: "/home/komodo", signal: "SIGINT")
        ),
        ("doc", chain("DOC", 62415)),
        ("gleec_old", chain("GLEEC", 23225, datadir: "/home/komodo/.komodo/GLEEC_OLD")),
        (
            "iguana",
            config(
                entrypoint: ["/usr/local/bin/iguana"], ports: ["7776/tcp", "7779/tcp"],
                volumes: ["/home/iguana/.iguana"],
                home: "/home/iguana", signal: "SIGTERM")
        ),
        (
            "litecoind",
            config(
                entrypoint: ["/usr/local/bin/litecoind"], ports: ["9332/tcp", "9333/tcp"],
                volumes: ["/home/litecoin/.litecoin"],
                labels: ["io.komodo.p2p-port": "9333", "io.komodo.rpc-port": "9332"], home: "/home/litecoin")
        ),
        ("bitcoind", config(entrypoint: ["/usr/local/bin/bitcoind"], ports: ["8332/tcp", "8333/tcp"])),
    ].map { DeployRefs.Service(name: $0.0, reference: "r.example/komodo/\($0.0)@sha256:00", config: $0.1) }

    static let document = ReleaseDocument(
        version: "1.0.0", created: "", revision: nil, recipesDigest: nil, lockDigest: nil, registry: "r.example",
        namespace: "komodo", movingTags: [], images: [])

    func render(_ format: DeployRefs.Format, _ configure: (inout DeployRefs.Options) -> Void = { _ in }) -> String {
        var options = DeployRefs.Options()
        configure(&options)
        return DeployRefs.render(Self.document, services: Self.services, format: format, options: options)
    }

    @Test func composeIsOneNodeSharingLocalhost() throws {
        let text = render(.compose) { $0.thirdParty = ["litecoind"] }
        let tmp = try TemporaryDirectory("kiln-node")
        defer { tmp.remove() }
        try tmp.write("compose.yaml", text)
        let validation = try Validators.compose(tmp.path + "/compose.yaml")
        #expect(validation.succeeded, Comment(rawValue: validation.stdout + validation.stderr))

        let parsed = try #require(try Yams.load(yaml: text) as? [String: Any])
        #expect(parsed["name"] as? String == "komodo-node")
        let services = try #require(parsed["services"] as? [String: [String: Any]])
        // Base images never; bitcoind only when asked.
        #expect(services.keys.sorted() == ["doc", "gleec-old", "iguana", "komodod", "litecoind"])
        let komodod = try #require(services["komodod"])
        // Every P2P port of the node, on the namespace owner; no RPC port anywhere.
        #expect(
            komodod["ports"] as? [String] == ["7770:7770/tcp", "9333:9333/tcp", "23225:23225/tcp", "62415:62415/tcp"])
        #expect(komodod["stop_grace_period"] as? String == "300s")
        #expect(komodod["stop_signal"] as? String == "SIGINT")
        #expect(komodod["secrets"] as? [String] == ["komodo-rpcuser", "komodo-rpcpassword"])
        #expect(komodod["volumes"] as? [String] == ["komodo-data:/home/komodo/.komodo"])
        for (name, service) in services where name != "komodod" {
            #expect(service["ports"] == nil, "\(name) publishes nothing itself")
            #expect(service["network_mode"] as? String == "service:komodod", "\(name)")
        }
        let doc = try #require(services["doc"])
        #expect(
            doc["volumes"] as? [String] == ["komodo-data:/home/komodo/.komodo", "doc-data:/home/komodo/.komodo/DOC"])
        let check = try #require(doc["healthcheck"] as? [String: Any])
        #expect(check["test"] as? [String] == ["CMD", "komodo-cli", "-ac_name=DOC", "getconnectioncount"])
        let gleec = try #require((services["gleec-old"]?["healthcheck"] as? [String: Any])?["test"] as? [String])
        #expect(gleec.contains("-datadir=/home/komodo/.komodo/GLEEC_OLD"))
        // iguana reads the daemons' confs under its own $HOME/.komodo.
        #expect(
            services["iguana"]?["volumes"] as? [String] == [
                "iguana-data:/home/iguana/.iguana", "komodo-data:/home/iguana/.komodo",
                "doc-data:/home/iguana/.komodo/DOC", "gleec-old-data:/home/iguana/.komodo/GLEEC_OLD",
            ])
        #expect(services["iguana"]?["secrets"] == nil)
        #expect(
            (services["litecoind"]?["healthcheck"] as? [String: Any])?["test"] as? [String] == [
                "CMD", "litecoin-cli", "getconnectioncount",
            ])
        let secrets = try #require(parsed["secrets"] as? [String: [String: String]])
        #expect(secrets["komodo-rpcpassword"]?["file"] == "./secrets/komodo-rpcpassword")
        #expect(render(.compose) == render(.compose), "deterministic")
    }

    @Test func kubernetesIsOnePodWithNoRPCService() throws {
        let text = render(.kubernetes) {
            $0.thirdParty = ["litecoind"]
            $0.sizes = ["doc-data": "40Gi"]
        }
        let tmp = try TemporaryDirectory("kiln-node")
        defer { tmp.remove() }
        try tmp.write("node.yaml", text)
        let validation = try Validators.kubernetes(tmp.path + "/node.yaml")
        #expect(validation.succeeded, Comment(rawValue: validation.stdout + validation.stderr))

        let documents = try Yams.load_all(yaml: text).compactMap { $0 as? [String: Any] }
        #expect(documents.map { $0["kind"] as? String } == ["Service", "Service", "StatefulSet"])
        for service in documents.prefix(2) {
            let spec = try #require(service["spec"] as? [String: Any])
            let ports = try #require(spec["ports"] as? [[String: Any]]).compactMap { $0["port"] as? Int }
            #expect(ports == [7770, 9333, 23225, 62415], "P2P only")
        }
        #expect((documents[1]["spec"] as? [String: Any])?["type"] as? String == "LoadBalancer")
        let set = try #require(documents[2]["spec"] as? [String: Any])
        let pod = try #require((set["template"] as? [String: Any])?["spec"] as? [String: Any])
        #expect(pod["terminationGracePeriodSeconds"] as? Int == 300)
        let security = try #require(pod["securityContext"] as? [String: Any])
        #expect(security["fsGroup"] as? Int == 3003)
        let containers = try #require(pod["containers"] as? [[String: Any]])
        #expect(
            containers.compactMap { $0["name"] as? String } == ["komodod", "doc", "gleec-old", "iguana", "litecoind"])
        for container in containers {
            let ports = (container["ports"] as? [[String: Any]] ?? []).compactMap { $0["containerPort"] as? Int }
            #expect(Set(ports).isDisjoint(with: [7771, 62416, 23226, 7776, 9332]), "no RPC port declared")
        }
        let komodod = containers[0]
        let context = try #require(komodod["securityContext"] as? [String: Any])
        #expect(context["runAsUser"] as? Int == 3003 && context["runAsNonRoot"] as? Bool == true)
        #expect((containers[3]["securityContext"] as? [String: Any])?["runAsUser"] == nil, "iguana: no uid known")
        let probe = try #require((komodod["livenessProbe"] as? [String: Any])?["exec"] as? [String: Any])
        #expect(probe["command"] as? [String] == ["komodo-cli", "getconnectioncount"])
        let mounts = try #require(komodod["volumeMounts"] as? [[String: Any]])
        #expect(mounts.last?["mountPath"] as? String == "/run/komodo-rpc" && mounts.last?["readOnly"] as? Bool == true)
        let env = try #require(komodod["env"] as? [[String: String]])
        #expect(env == [["name": "KOMODO_RPC_SECRETS", "value": "/run/komodo-rpc"]], "komodo-start reads it there")
        let secret = try #require((pod["volumes"] as? [[String: Any]])?.first?["secret"] as? [String: Any])
        #expect(secret["secretName"] as? String == "komodo-rpc")
        var sizes: [String: String] = [:]
        for claim in try #require(set["volumeClaimTemplates"] as? [[String: Any]]) {
            let name = try #require((claim["metadata"] as? [String: Any])?["name"] as? String)
            let spec = try #require(claim["spec"] as? [String: Any])
            sizes[name] = ((spec["resources"] as? [String: Any])?["requests"] as? [String: String])?["storage"]
        }
        #expect(
            sizes == [
                "komodo-data": "150Gi", "doc-data": "40Gi", "gleec-old-data": "25Gi", "iguana-data": "10Gi",
                "litecoind-data": "300Gi",
            ])
    }
}
