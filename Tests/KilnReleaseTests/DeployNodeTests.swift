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
        labels: [String: String] = [:], home: String? = nil, signal: String? = nil, user: String? = nil,
        env: [String] = []
    ) -> ImageConfig {
        var exec = ImageConfig.ExecutionConfig()
        exec.entrypoint = entrypoint
        exec.cmd = cmd
        exec.exposedPorts = ports.isEmpty ? nil : Dictionary(uniqueKeysWithValues: ports.map { ($0, EmptyObject()) })
        exec.volumes = volumes.isEmpty ? nil : Dictionary(uniqueKeysWithValues: volumes.map { ($0, EmptyObject()) })
        exec.labels = labels.isEmpty ? nil : labels
        exec.env = (home.map { ["HOME=" + $0] } ?? []) + env
        exec.workingDir = home
        exec.stopSignal = signal
        exec.user = user ?? (home == "/home/komodo" ? "3003" : nil)
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

    /// As recipes/ makes them (labels, env, users).
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
                entrypoint: ["/usr/local/bin/iguana-start"], ports: ["7778/tcp"], volumes: ["/home/iguana/.iguana"],
                labels: [
                    "io.komodo.rpc-port": "7778", "io.komodo.mode.notary.p2p-port": "13848",
                    "io.komodo.mode.notary.rpc-port": "7776", "io.komodo.mode.3rd_party.p2p-port": "13845",
                    "io.komodo.mode.3rd_party.rpc-port": "7779",
                ],
                home: "/home/iguana", signal: "SIGTERM", user: "3004", env: ["IGUANA_MODE=none"])
        ),
        (
            "litecoind",
            config(
                entrypoint: ["/usr/local/bin/coin-start"], ports: ["9332/tcp", "9333/tcp"],
                volumes: ["/home/litecoin/.litecoin"],
                labels: ["io.komodo.p2p-port": "9333", "io.komodo.rpc-port": "9332"], home: "/home/litecoin",
                user: "3002",
                env: [
                    "COIN_DAEMON=/usr/local/bin/litecoind", "COIN_CONF=/home/litecoin/.litecoin/litecoin.conf",
                    "COIN_RPC_PORT=9332", "COIN_SECRET=litecoind",
                ])
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

    func validCompose(_ text: String) async throws {
        try await withTemporaryDirectory("kiln-node") { tmp in
            try tmp.write("compose.yaml", text)
            let validation = try Validators.compose(tmp.path + "/compose.yaml")
            #expect(validation.succeeded, Comment(rawValue: validation.stdout + validation.stderr))
        }
    }

    func validKubernetes(_ text: String) async throws {
        try await withTemporaryDirectory("kiln-node") { tmp in
            try tmp.write("node.yaml", text)
            let validation = try Validators.kubernetes(tmp.path + "/node.yaml")
            #expect(validation.succeeded, Comment(rawValue: validation.stdout + validation.stderr))
        }
    }

    @Test func composeIsOneNodeSharingLocalhost() async throws {
        let text = render(.compose) { $0.thirdParty = ["litecoind"] }
        try await validCompose(text)
        #expect(text.contains("podman-compose --podman-run-args=--stop-timeout=300 up -d"))
        // The gate before `up`, one command per image the node runs, the first of them komodod.
        let gates = text.split(separator: "\n").filter { $0.hasPrefix("#   kiln verify ") }
        #expect(!gates.isEmpty && gates.allSatisfy { $0.hasSuffix(" --key release.pub") }, "\(gates)")
        #expect(gates.first?.contains("/komodod@sha256:") == true, "\(gates)")

        let parsed = try #require(try Yams.load(yaml: text) as? [String: Any])
        #expect(parsed["name"] as? String == "komodo-node")
        let services = try #require(parsed["services"] as? [String: [String: Any]])
        #expect(gates.count == services.count, "one gate per service: \(gates)")
        // Base images never; bitcoind only when asked.
        #expect(services.keys.sorted() == ["doc", "gleec-old", "iguana", "komodod", "litecoind"])
        let komodod = try #require(services["komodod"])
        // Every P2P port of the node, on the namespace owner; no RPC port anywhere; iguana (mode none) none.
        #expect(
            komodod["ports"] as? [String] == ["7770:7770/tcp", "9333:9333/tcp", "23225:23225/tcp", "62415:62415/tcp"])
        #expect(komodod["stop_signal"] as? String == "SIGINT")
        // Two words at least: podman runs a one-word healthcheck through a shell the image does not have.
        #expect(
            (komodod["healthcheck"] as? [String: Any])?["test"] as? [String] == [
                "CMD", "komodo-ready", "-datadir=/home/komodo/.komodo",
            ])
        #expect(komodod["secrets"] as? [String] == ["komodo-rpcuser", "komodo-rpcpassword"])
        #expect(
            komodod["volumes"] as? [String] == [
                "komodo-data:/home/komodo/.komodo", "komodo-backup:/home/komodo/backup",
            ])
        #expect((komodod["environment"] as? [String: String])?["KOMODO_EXPORTDIR"] == "/home/komodo/backup")
        for (name, service) in services {
            if name != "komodod" {
                #expect(service["ports"] == nil, "\(name) publishes nothing itself")
                #expect(service["network_mode"] as? String == "service:komodod", "\(name)")
            }
            // 300 s for every daemon, seconds for iguana (it stops on SIGTERM).
            #expect(service["stop_grace_period"] as? String == (name == "iguana" ? "30s" : "300s"), "\(name)")
            #expect(service["read_only"] as? Bool == true, "\(name)")
            let logging = try #require(service["logging"] as? [String: Any])
            #expect((logging["options"] as? [String: String])?["max-size"] == "20m", "\(name)")
            let resources = try #require((service["deploy"] as? [String: Any])?["resources"] as? [String: Any])
            #expect((resources["limits"] as? [String: String])?["memory"] != nil, "\(name)")
            // No service mounts komodod's data (its wallet) but komodod.
            let volumes = service["volumes"] as? [String] ?? []
            #expect(name == "komodod" || !volumes.contains { $0.hasPrefix("komodo-data:") }, "\(name)")
        }
        let doc = try #require(services["doc"])
        #expect(doc["volumes"] as? [String] == ["doc-data:/home/komodo/.komodo/DOC"])
        // KMD's conf for the chain is written from the secret into a tmpfs.
        #expect(doc["tmpfs"] as? [String] == ["/tmp:mode=1777", "/home/komodo/.komodo:mode=1777"])
        let check = try #require(doc["healthcheck"] as? [String: Any])
        #expect(check["test"] as? [String] == ["CMD", "komodo-ready", "-ac_name=DOC"])
        let gleec = try #require((services["gleec-old"]?["healthcheck"] as? [String: Any])?["test"] as? [String])
        #expect(gleec.contains("-datadir=/home/komodo/.komodo/GLEEC_OLD"))
        // iguana: only its own volume; the RPC secrets, read-only, to write the daemons' confs into tmpfs.
        let iguana = try #require(services["iguana"])
        #expect(iguana["volumes"] as? [String] == ["iguana-data:/home/iguana/.iguana"])
        #expect(
            iguana["secrets"] as? [String] == [
                "komodo-rpcuser", "komodo-rpcpassword", "litecoind-rpcuser", "litecoind-rpcpassword",
            ])
        #expect(
            iguana["tmpfs"] as? [String] == [
                "/tmp:mode=1777", "/home/iguana/.komodo:mode=1777", "/home/iguana/.litecoin:mode=1777",
            ])
        let environment = try #require(iguana["environment"] as? [String: String])
        #expect(environment["IGUANA_MODE"] == "none")
        #expect(
            environment["IGUANA_RPC_CONFS"]
                == "komodo:.komodo/komodo.conf:7771 komodo:.komodo/DOC/DOC.conf:62416 "
                + "komodo:.komodo/GLEEC_OLD/GLEEC.conf:23226 litecoind:.litecoin/litecoin.conf:9332")
        // litecoind like komodod: its conf from its own secret, readiness through RPC.
        let litecoind = try #require(services["litecoind"])
        #expect(litecoind["secrets"] as? [String] == ["litecoind-rpcuser", "litecoind-rpcpassword"])
        #expect(
            (litecoind["healthcheck"] as? [String: Any])?["test"] as? [String] == [
                "CMD", "litecoin-cli", "getblockcount",
            ])
        let secrets = try #require(parsed["secrets"] as? [String: [String: String]])
        #expect(secrets["komodo-rpcpassword"]?["file"] == "./secrets/komodo-rpcpassword")
        #expect(secrets["litecoind-rpcuser"]?["file"] == "./secrets/litecoind-rpcuser")
        #expect(render(.compose) == render(.compose), "deterministic")
    }

    /// The ports iguana listens on follow its mode, and are the ones published.
    @Test func iguanaModesPublishWhatTheyListenOn() async throws {
        for (mode, p2p) in [("none", nil), ("notary", 13848), ("3rd_party", 13845)] as [(String, Int?)] {
            let text = render(.compose) {
                $0.services = ["komodod", "iguana"]
                $0.iguanaMode = mode
            }
            try await validCompose(text)
            let parsed = try #require(try Yams.load(yaml: text) as? [String: Any])
            let services = try #require(parsed["services"] as? [String: [String: Any]])
            let ports = services["komodod"]?["ports"] as? [String] ?? []
            #expect(ports == ["7770:7770/tcp"] + (p2p.map { ["\($0):\($0)/tcp"] } ?? []), "\(mode)")
            let iguana = try #require(services["iguana"])
            #expect((iguana["environment"] as? [String: String])?["IGUANA_MODE"] == mode)
            let secrets = iguana["secrets"] as? [String] ?? []
            #expect(secrets.contains("iguana-passphrase") == (mode != "none"), "\(mode)")
            let kubernetes = render(.kubernetes) {
                $0.services = ["komodod", "iguana"]
                $0.iguanaMode = mode
            }
            try await validKubernetes(kubernetes)
            let documents = try Yams.load_all(yaml: kubernetes).compactMap { $0 as? [String: Any] }
            let set = try #require(
                documents.first {
                    $0["kind"] as? String == "StatefulSet"
                        && ($0["metadata"] as? [String: Any])?["name"] as? String == "komodo-node-iguana"
                })
            let pod = try #require(
                ((set["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
            let container = try #require((pod["containers"] as? [[String: Any]])?.first)
            let declared = (container["ports"] as? [[String: Any]] ?? []).compactMap { $0["containerPort"] as? Int }
            #expect(declared == (p2p.map { [$0] } ?? []), "\(mode)")
            let readiness = try #require(container["readinessProbe"] as? [String: Any])
            let rpc = ["none": 7778, "notary": 7776, "3rd_party": 7779][mode]
            #expect((readiness["tcpSocket"] as? [String: Any])?["port"] as? Int == rpc, "\(mode)")
        }
    }

    /// Any other image: generic names, its own ports published, no Komodo wording or secrets.
    @Test func aNonKomodoImageIsDeployedGenerically() async throws {
        let web = DeployRefs.Service(
            name: "web", reference: "r.example/apps/web@sha256:11",
            config: Self.config(
                entrypoint: ["/srv/web"], ports: ["8080/tcp", "9090/udp"], volumes: ["/var/lib/web"], home: "/srv",
                user: "1000"))
        for format in [DeployRefs.Format.compose, .kubernetes] {
            let text = DeployRefs.render(Self.document, services: [web], format: format)
            #expect(!text.lowercased().contains("komodo"), "\(format): \(text)")
            #expect(!text.contains("secret"), "\(format)")
            if format == .compose {
                try await validCompose(text)
                let parsed = try #require(try Yams.load(yaml: text) as? [String: Any])
                #expect(parsed["name"] as? String == "node")
                let service = try #require((parsed["services"] as? [String: [String: Any]])?["web"])
                #expect(service["ports"] as? [String] == ["8080:8080/tcp", "9090:9090/udp"])
                #expect(service["volumes"] as? [String] == ["web-data:/var/lib/web"])
            } else {
                try await validKubernetes(text)
                let documents = try Yams.load_all(yaml: text).compactMap { $0 as? [String: Any] }
                #expect(documents.map { $0["kind"] as? String } == ["Service", "StatefulSet"])
                #expect((documents[1]["metadata"] as? [String: Any])?["name"] as? String == "node-web")
                let pod = try #require(
                    ((documents[1]["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"]
                        as? [String: Any])
                #expect(pod["hostNetwork"] == nil, "one container: its own network namespace")
                let container = try #require((pod["containers"] as? [[String: Any]])?.first)
                let ports = (container["ports"] as? [[String: Any]] ?? []).compactMap { $0["containerPort"] as? Int }
                #expect(ports == [8080, 9090])
            }
        }
    }

    @Test func kubernetesIsOnePodPerDaemonWithNoRPCService() async throws {
        let text = render(.kubernetes) {
            $0.thirdParty = ["litecoind"]
            $0.sizes = ["doc-data": "40Gi"]
        }
        try await validKubernetes(text)

        let documents = try Yams.load_all(yaml: text).compactMap { $0 as? [String: Any] }
        func named(_ name: String) -> [String: Any]? {
            documents.first {
                ($0["metadata"] as? [String: Any])?["name"] as? String == name && $0["kind"] as? String != "Service"
            }
        }
        #expect(
            documents.map { $0["kind"] as? String } == [
                "Service", "StatefulSet", "CronJob", "Service", "StatefulSet", "Service", "StatefulSet", "Service",
                "StatefulSet", "Service", "StatefulSet",
            ])
        // No Service names a port: identity only. P2P ports are the Kubernetes node's own (hostNetwork).
        for service in documents where service["kind"] as? String == "Service" {
            #expect((service["spec"] as? [String: Any])?["ports"] == nil)
        }
        var sizes: [String: String] = [:]
        var containers: [String: [String: Any]] = [:]
        var pods: [String: [String: Any]] = [:]
        for name in ["komodod", "doc", "gleec-old", "iguana", "litecoind"] {
            let set = try #require(named("komodo-node-" + name)?["spec"] as? [String: Any], "\(name)")
            let pod = try #require((set["template"] as? [String: Any])?["spec"] as? [String: Any])
            pods[name] = pod
            #expect(pod["hostNetwork"] as? Bool == true, "\(name): RPC on the loopback it shares")
            #expect(pod["terminationGracePeriodSeconds"] as? Int == (name == "iguana" ? 30 : 300), "\(name)")
            let affinity = (pod["affinity"] as? [String: Any])?["podAffinity"]
            #expect((affinity == nil) == (name == "komodod"), "\(name): on komodod's node")
            let list = try #require(pod["containers"] as? [[String: Any]])
            #expect(list.count == 1)
            containers[name] = list[0]
            let context = try #require(list[0]["securityContext"] as? [String: Any])
            #expect(context["readOnlyRootFilesystem"] as? Bool == true, "\(name)")
            #expect(context["runAsNonRoot"] as? Bool == true, "\(name)")
            let resources = try #require(list[0]["resources"] as? [String: Any])
            #expect((resources["requests"] as? [String: String])?["memory"] != nil, "\(name)")
            #expect((resources["limits"] as? [String: String])?["memory"] != nil, "\(name)")
            let ports = (list[0]["ports"] as? [[String: Any]] ?? []).compactMap { $0["containerPort"] as? Int }
            #expect(Set(ports).isDisjoint(with: [7771, 62416, 23226, 7776, 7778, 9332]), "no RPC port declared")
            for claim in set["volumeClaimTemplates"] as? [[String: Any]] ?? [] {
                let claimName = try #require((claim["metadata"] as? [String: Any])?["name"] as? String)
                let spec = try #require(claim["spec"] as? [String: Any])
                sizes[claimName] = ((spec["resources"] as? [String: Any])?["requests"] as? [String: String])?["storage"]
            }
        }
        #expect(
            sizes == [
                "komodo-data": "150Gi", "komodo-backup": "1Gi", "doc-data": "40Gi", "gleec-old-data": "25Gi",
                "iguana-data": "10Gi", "litecoind-data": "300Gi",
            ])
        let komodod = try #require(containers["komodod"])
        #expect((komodod["ports"] as? [[String: Any]])?.first?["hostPort"] as? Int == 7770)
        // Liveness: a TCP connection to the RPC port on the loopback (no cs_main); readiness: RPC.
        let liveness = try #require(komodod["livenessProbe"] as? [String: Any])
        #expect(liveness["exec"] == nil)
        #expect(liveness["tcpSocket"] as? [String: AnyHashable] == ["host": "127.0.0.1", "port": 7771])
        let readiness = try #require((komodod["readinessProbe"] as? [String: Any])?["exec"] as? [String: Any])
        #expect(readiness["command"] as? [String] == ["komodo-ready", "-datadir=/home/komodo/.komodo"])
        let doc = try #require(containers["doc"])
        #expect(
            ((doc["livenessProbe"] as? [String: Any])?["tcpSocket"] as? [String: Any])?["port"] as? Int == 62416)
        let mounts = try #require(komodod["volumeMounts"] as? [[String: Any]])
        #expect(
            mounts.last?["mountPath"] as? String == "/run/kiln-secrets" && mounts.last?["readOnly"] as? Bool == true)
        let env = try #require(komodod["env"] as? [[String: String]])
        #expect(
            env.contains(["name": "KOMODO_RPC_SECRETS", "value": "/run/kiln-secrets"]), "komodo-start reads it there")
        // iguana: no daemon's volume.
        let iguanaMounts = try #require(containers["iguana"]?["volumeMounts"] as? [[String: Any]])
        #expect(
            !iguanaMounts.contains { ["komodo-data", "doc-data", "litecoind-data"].contains($0["name"] as? String) })
        // The wallet backup, daily, beside komodod.
        let cron = try #require(named("komodo-node-komodod-backup")?["spec"] as? [String: Any])
        #expect(cron["schedule"] as? String == "17 3 * * *")
        #expect(!text.contains("LoadBalancer"))
    }
}
