import Foundation
import KilnProcess
import KilnStore

/// A username and secret for one registry. Its description never shows the secret.
public struct Credential: Sendable, Equatable, CustomStringConvertible {
    public var username: String
    public var secret: String
    public init(username: String, secret: String) {
        self.username = username
        self.secret = secret
    }
    public var description: String { "\(username):<redacted>" }
}

public enum CredentialError: Error, CustomStringConvertible {
    case helperFailed(helper: String, registry: String, detail: String)
    case unreadableConfig(path: String, detail: String)

    public var description: String {
        switch self {
        case .helperFailed(let helper, let registry, let detail):
            return "credential helper docker-credential-\(helper) failed for \(registry): \(detail)"
        case .unreadableConfig(let path, let detail):
            return
                "\(path) is not a valid auth file (docker config.json or containers auth.json): \(detail). Fix or move it, then `kiln login` again."
        }
    }
}

/// Where credentials come from, in order: the environment (CI), then the auth files in podman and skopeo's
/// order (containers-auth.json(5)): `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`, docker's
/// config.json (`$DOCKER_CONFIG`, else `~/.docker`). The first file that knows the registry answers, through
/// its `credHelpers`, its `auths` or its `credsStore`. `kiln login` writes `$REGISTRY_AUTH_FILE` when set
/// (as podman does), else docker's config.json.
public struct CredentialStore: Sendable {
    /// The file `save` and `remove` change.
    public var configPath: String
    /// The files read, first match wins.
    public var searchPaths: [String]
    public var environment: [String: String]
    /// How long a credential helper may take to answer.
    public var helperTimeLimit: TimeInterval = 30

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
        let directory = environment["DOCKER_CONFIG"] ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.docker")
        let docker = directory + "/config.json"
        let authFile = environment["REGISTRY_AUTH_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        let runtime = environment["XDG_RUNTIME_DIR"].flatMap { $0.isEmpty ? nil : $0 + "/containers/auth.json" }
        configPath = authFile ?? docker
        var paths: [String] = []
        for path in [authFile, runtime, docker].compactMap({ $0 }) where !paths.contains(path) { paths.append(path) }
        searchPaths = paths
    }

    /// Docker Hub's key in config.json is its v1 URL.
    static func keys(for registry: String) -> [String] {
        if registry == Reference.dockerHub {
            return ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"]
        }
        return [
            registry, "https://\(registry)", "http://\(registry)", "https://\(registry)/v1/", "https://\(registry)/v2/",
        ]
    }

    public func credential(for registry: String) throws -> Credential? {
        // CI: KILN_REGISTRY_USERNAME / KILN_REGISTRY_PASSWORD, for KILN_REGISTRY_HOST only when that is set.
        if let user = environment["KILN_REGISTRY_USERNAME"], let password = environment["KILN_REGISTRY_PASSWORD"],
            environment["KILN_REGISTRY_HOST"].map({ $0 == registry }) ?? true
        {
            return Credential(username: user, secret: password)
        }
        for path in searchPaths {
            if let found = try credential(for: registry, in: try load(path)) { return found }
        }
        return nil
    }

    func credential(for registry: String, in config: [String: Any]) throws -> Credential? {
        let keys = Self.keys(for: registry)
        if let helpers = config["credHelpers"] as? [String: String],
            let helper = keys.lazy.compactMap({ helpers[$0] }).first
        {
            return try fromHelper(helper, registry: registry)
        }
        if let auths = config["auths"] as? [String: Any] {
            for key in keys {
                guard let entry = auths[key] as? [String: Any] else { continue }
                if let encoded = entry["auth"] as? String, let data = Data(base64Encoded: encoded),
                    let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":")
                {
                    return Credential(
                        username: String(text[..<colon]), secret: String(text[text.index(after: colon)...]))
                }
                if let token = entry["identitytoken"] as? String {
                    return Credential(username: "<token>", secret: token)
                }
            }
        }
        if let store = config["credsStore"] as? String { return try fromHelper(store, registry: registry) }
        return nil
    }

    /// Saves a credential: to the `credsStore` helper when one is configured, else base64 in `auths`
    /// (file mode 0600, written atomically).
    public func save(_ credential: Credential, for registry: String) throws {
        var config = try load()
        let key = Self.keys(for: registry)[0]
        if let store = config["credsStore"] as? String {
            let payload = try JSONSerialization.data(
                withJSONObject: ["ServerURL": key, "Username": credential.username, "Secret": credential.secret])
            _ = try runHelper(store, "store", input: payload, registry: registry)
            return
        }
        var auths = config["auths"] as? [String: Any] ?? [:]
        auths[key] = ["auth": Data("\(credential.username):\(credential.secret)".utf8).base64EncodedString()]
        config["auths"] = auths
        try write(config)
    }

    /// Removes a registry's credential. Returns false when there was none.
    @discardableResult
    public func remove(for registry: String) throws -> Bool {
        var config = try load()
        var removed = false
        if var auths = config["auths"] as? [String: Any] {
            for key in Self.keys(for: registry) where auths.removeValue(forKey: key) != nil { removed = true }
            config["auths"] = auths
        }
        if let store = config["credsStore"] as? String {
            if (try? runHelper(store, "erase", input: Data(Self.keys(for: registry)[0].utf8), registry: registry))
                != nil
            {
                removed = true
            }
        }
        try write(config)
        return removed
    }

    func load(_ path: String? = nil) throws -> [String: Any] {
        let path = path ?? configPath
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        do {
            return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        } catch {
            throw CredentialError.unreadableConfig(path: path, detail: "\(error)")
        }
    }

    func write(_ config: [String: Any]) throws {
        let directory = (configPath as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let data = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(data, to: configPath, mode: 0o600)
    }

    func fromHelper(_ helper: String, registry: String) throws -> Credential? {
        let output = try runHelper(helper, "get", input: Data(Self.keys(for: registry)[0].utf8), registry: registry)
        guard let json = try? JSONSerialization.jsonObject(with: output) as? [String: Any],
            let user = json["Username"] as? String, let secret = json["Secret"] as? String
        else { return nil }
        return Credential(username: user, secret: secret)
    }

    /// The docker-credential-* protocol: the action as argument, the payload on stdin, JSON on stdout. A helper
    /// that does not answer within `helperTimeLimit` (a keychain waiting for a password nobody types) is killed.
    func runHelper(_ helper: String, _ action: String, input: Data, registry: String) throws -> Data {
        let result: ChildProcess.Captured
        do {
            result = try ChildProcess.capture(
                ["docker-credential-\(helper)", action], environment: environment, input: input,
                timeLimit: helperTimeLimit)
        } catch {
            throw CredentialError.helperFailed(helper: helper, registry: registry, detail: "cannot run it: \(error)")
        }
        guard let status = result.status else {
            throw CredentialError.helperFailed(
                helper: helper, registry: registry,
                detail: "it did not answer within \(Int(helperTimeLimit)) s and was stopped")
        }
        guard status == 0 else {
            // Helpers print "credentials not found in native keychain" on stdout for a missing entry.
            let text = (result.stdout + result.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
            if text.lowercased().contains("not found") { return Data() }
            throw CredentialError.helperFailed(helper: helper, registry: registry, detail: String(text.prefix(200)))
        }
        return Data(result.stdout.utf8)
    }
}
