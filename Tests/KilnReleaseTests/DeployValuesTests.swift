import Foundation
import KilnOCI
import KilnRelease
import Testing
import Yams

/// Values from an image config go into the deployment files as they are: whatever they hold (`: `, `#`,
/// quotes, line breaks, a leading `-`, `*`, `&`), the files read back to those values and gain no key.
@Suite struct DeployValuesTests {
    static let hostile = "a: b # c 'd' \"e\"\n- f: *g &h"

    static func service() -> DeployRefs.Service {
        let config = DeployNodeTests.config(
            entrypoint: ["/usr/local/bin/coin-start"], ports: ["9333/tcp"], volumes: ["/data/" + hostile],
            labels: ["io.komodo.p2p-port": "9333", "io.komodo.rpc-port": "9332"], home: "/home/" + hostile,
            signal: hostile, user: "3002",
            env: ["COIN_SECRET=" + hostile, "COIN_CONF=/home/\(hostile)/x: y.conf"])
        return DeployRefs.Service(name: "coin", reference: "r.example/ns/coin@sha256:" + hostile, config: config)
    }

    static func render(_ format: DeployRefs.Format) -> String {
        DeployRefs.render(DeployNodeTests.document, services: [service()], format: format)
    }

    @Test func composeReadsBackTheImagesValues() throws {
        let text = Self.render(.compose)
        let parsed = try #require(try Yams.load(yaml: text) as? [String: Any], "\(text)")
        #expect(parsed.keys.sorted() == ["name", "secrets", "services", "volumes"], "\(text)")
        let services = try #require(parsed["services"] as? [String: [String: Any]])
        #expect(services.keys.sorted() == ["coin"])
        let coin = try #require(services["coin"])
        #expect(coin["image"] as? String == "r.example/ns/coin@sha256:" + Self.hostile)
        #expect(coin["stop_signal"] as? String == Self.hostile)
        #expect(coin["secrets"] as? [String] == [Self.hostile + "-rpcuser", Self.hostile + "-rpcpassword"])
        #expect(coin["tmpfs"] as? [String] == ["/tmp:mode=1777"])
        let secrets = try #require(parsed["secrets"] as? [String: [String: String]])
        #expect(secrets[Self.hostile + "-rpcuser"]?["file"] == "./secrets/\(Self.hostile)-rpcuser")
        // The secrets' names are in the header comment too: a line break there stays inside the comment.
        let gates = text.split(separator: "\n").filter { $0.hasPrefix("#   kiln verify ") }
        #expect(gates.count == 1, "\(gates)")
    }

    @Test func kubernetesReadsBackTheImagesValues() throws {
        let text = Self.render(.kubernetes)
        let documents = try Yams.load_all(yaml: text).compactMap { $0 as? [String: Any] }
        #expect(documents.map { $0["kind"] as? String } == ["Service", "StatefulSet"], "\(text)")
        let pod = try #require(
            ((documents[1]["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)
        #expect(container["image"] as? String == "r.example/ns/coin@sha256:" + Self.hostile)
        #expect(
            container.keys.sorted() == [
                "env", "image", "livenessProbe", "name", "ports", "readinessProbe", "securityContext",
                "startupProbe", "volumeMounts",
            ])
        let env = try #require(container["env"] as? [[String: String]])
        #expect(env == [["name": "COIN_RPC_SECRETS", "value": "/run/kiln-secrets"]])
        let mounts = try #require(container["volumeMounts"] as? [[String: Any]])
        #expect(mounts.contains { $0["mountPath"] as? String == "/data/" + Self.hostile }, "\(mounts)")
        let sources = (((pod["volumes"] as? [[String: Any]])?.last?["projected"] as? [String: Any])?["sources"])
        #expect(
            ((sources as? [[String: Any]])?.first?["secret"] as? [String: Any])?["name"] as? String
                == Self.hostile + "-rpc")
        // Line breaks in the `kubectl create secret` comment continue as comment lines.
        let header = text.components(separatedBy: "\n---\n")[0]
        #expect(header.split(separator: "\n").allSatisfy { $0.hasPrefix("#") }, "\(header)")
    }

    /// An environment value (komodod's export directory, under the image's HOME) in both formats.
    @Test func environmentValuesReadBack() throws {
        let home = "/home/" + Self.hostile
        let komodod = DeployRefs.Service(
            name: "komodod", reference: "r.example/ns/komodod@sha256:00",
            config: DeployNodeTests.config(
                entrypoint: ["/usr/local/bin/komodo-start"], ports: ["7770/tcp"], volumes: [home + "/.komodo"],
                labels: ["io.komodo.p2p-port": "7770", "io.komodo.rpc-port": "7771"], home: home, user: "3003"))
        let compose = DeployRefs.render(DeployNodeTests.document, services: [komodod], format: .compose)
        let services = try #require((try Yams.load(yaml: compose) as? [String: Any])?["services"] as? [String: Any])
        let environment = (services["komodod"] as? [String: Any])?["environment"] as? [String: String]
        #expect(environment == ["KOMODO_EXPORTDIR": home + "/backup"], "\(compose)")
        let kubernetes = DeployRefs.render(DeployNodeTests.document, services: [komodod], format: .kubernetes)
        let set = try #require(
            try Yams.load_all(yaml: kubernetes).compactMap { $0 as? [String: Any] }.first {
                $0["kind"] as? String == "StatefulSet"
            })
        let pod = ((set["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any]
        let env = (pod?["containers"] as? [[String: Any]])?.first?["env"] as? [[String: String]]
        #expect(env?.first == ["name": "KOMODO_EXPORTDIR", "value": home + "/backup"], "\(kubernetes)")
    }
}
