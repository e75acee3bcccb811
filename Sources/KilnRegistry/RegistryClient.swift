import Foundation
import KilnHTTP
import KilnOCI
import NIOHTTP1

public struct RegistryOptions: Sendable {
    /// Registries (host[:port]) that may be spoken to over plain HTTP. Loopback registries may always be.
    public var insecure: Set<String>
    public var caFile: String?
    public var credentials: CredentialStore
    /// Blobs up to this size go up in one request; larger ones in chunks of `chunkSize` read from disk.
    public var monolithicLimit: Int64
    public var chunkSize: Int64
    /// Parallel blob transfers.
    public var jobs: Int
    public var attempts: Int

    public init(
        insecure: Set<String> = [], caFile: String? = nil, credentials: CredentialStore = CredentialStore(),
        monolithicLimit: Int64 = 32 << 20, chunkSize: Int64 = 32 << 20, jobs: Int = 4, attempts: Int = 5
    ) {
        self.insecure = insecure
        self.caFile = caFile
        self.credentials = credentials
        self.monolithicLimit = monolithicLimit
        self.chunkSize = chunkSize
        self.jobs = jobs
        self.attempts = attempts
    }
}

/// A registry's error, with where it happened and what to do about it.
public struct RegistryError: Error, CustomStringConvertible {
    public var registry: String
    public var repository: String?
    public var step: String
    public var status: Int?
    public var code: String?
    public var message: String
    public var hint: String?

    public var description: String {
        var text = "\(step) failed at \(registry)"
        if let repository { text += "/\(repository)" }
        text += ": "
        if let status { text += "HTTP \(status) " }
        if let code { text += "\(code) " }
        text += message
        if let hint { text += "\n    hint: \(hint)" }
        return text
    }
}

/// A distribution-spec client for one registry: scheme discovery, auth (Basic, Bearer with per-scope token
/// cache), and the endpoints in RegistryClient+Blobs / +Manifests.
public final class RegistryClient: @unchecked Sendable {
    public let registry: String
    let host: String
    let transport: HTTPTransport
    let options: RegistryOptions
    private let lock = NSLock()
    private var base: URL?
    private var challenge: Challenge?
    private var tokens: [String: (token: String, expires: Date)] = [:]
    private var credentialLoaded = false
    private var credential: Credential?

    /// Bytes this client sent as blob content (tests read it to prove nothing was re-uploaded).
    public private(set) var uploadedBytes: Int64 = 0

    struct Challenge {
        var scheme: String
        var parameters: [String: String]
    }

    public init(registry: String, host: String? = nil, transport: HTTPTransport, options: RegistryOptions) {
        self.registry = registry
        self.host = host ?? (registry == Reference.dockerHub ? "registry-1.docker.io" : registry)
        self.transport = transport
        self.options = options
    }

    func addUploaded(_ n: Int64) {
        lock.lock()
        uploadedBytes += n
        lock.unlock()
    }

    var mayUseHTTP: Bool {
        options.insecure.contains(registry) || Reference(registry: registry, repository: "x").isLoopback
    }

    /// `https://host/v2/`, or `http://` for an insecure or loopback registry whose port speaks plain HTTP.
    /// One port speaks either TLS or not, so probing plain HTTP first cannot downgrade a TLS registry: its
    /// answer to plain HTTP is a 400 (or nothing), and TLS is used.
    func baseURL() async throws -> URL {
        if let base = lock.withLock({ self.base }) { return base }
        if mayUseHTTP,
            let answer = try? await transport.send(
                HTTPRequest(.GET, URL(string: "http://\(host)/v2/")!, retryable: false)),
            answer.status == 200 || answer.status == 401, answer.header("Docker-Distribution-Api-Version") != nil
        {
            remember(URL(string: "http://\(host)/v2/")!, first: answer)
            return URL(string: "http://\(host)/v2/")!
        }
        let https = URL(string: "https://\(host)/v2/")!
        do {
            let answer = try await transport.send(HTTPRequest(.GET, https))
            remember(https, first: answer)
            return https
        } catch let error as HTTPError {
            throw RegistryError(
                registry: registry, step: "connecting", message: error.description,
                hint: mayUseHTTP ? nil : "if this registry only speaks plain HTTP, allow it with --insecure \(registry)"
            )
        }
    }

    private func remember(_ url: URL, first: HTTPResponse) {
        lock.withLock {
            base = url
            if first.status == 401, let header = first.header("WWW-Authenticate") {
                challenge = Self.parseChallenge(header)
            }
        }
    }

    func url(_ path: String) async throws -> URL {
        URL(string: path, relativeTo: try await baseURL())!.absoluteURL
    }

    /// Sends a request with authorization for `scopes` (e.g. `repository:name:pull,push`), fetching or
    /// refreshing a token when the registry asks for one.
    func send(
        _ request: HTTPRequest, scopes: [String], step: String, repository: String?, limit: Int = 16 << 20
    ) async throws -> HTTPResponse {
        var request = request
        var refreshed = false
        while true {
            request.headers.removeAll { $0.0.lowercased() == "authorization" }
            if let auth = try await authorization(scopes: scopes, repository: repository) {
                request.headers.append(("Authorization", auth))
            }
            let response: HTTPResponse
            do {
                response = try await transport.send(request, limit: limit)
            } catch let error as HTTPError {
                throw RegistryError(registry: registry, repository: repository, step: step, message: error.description)
            }
            if response.status == 401 && !refreshed {
                refreshed = true
                if let header = response.header("WWW-Authenticate") {
                    lock.withLock {
                        challenge = Self.parseChallenge(header)
                        tokens.removeAll()
                    }
                    continue
                }
            }
            return response
        }
    }

    /// The Authorization header value for these scopes, if the registry wants one.
    func authorization(scopes: [String], repository: String?) async throws -> String? {
        _ = try await baseURL()
        guard let challenge = lock.withLock({ self.challenge }) else { return nil }
        let credential = try loadCredential()
        switch challenge.scheme.lowercased() {
        case "basic":
            guard let credential else { return nil }
            return "Basic " + Data("\(credential.username):\(credential.secret)".utf8).base64EncodedString()
        case "bearer":
            let key = scopes.sorted().joined(separator: " ")
            if let cached = lock.withLock({ tokens[key] }), cached.expires > Date() { return "Bearer \(cached.token)" }
            let token = try await fetchToken(challenge, scopes: scopes, credential: credential, repository: repository)
            return "Bearer \(token)"
        default:
            return nil
        }
    }

    func loadCredential() throws -> Credential? {
        if let done = lock.withLock({ credentialLoaded ? Optional(credential) : nil }) { return done }
        let found = try options.credentials.credential(for: registry)
        lock.withLock {
            credential = found
            credentialLoaded = true
        }
        return found
    }

    /// The token flow: GET realm?service=…&scope=… with Basic credentials when we have them.
    func fetchToken(_ challenge: Challenge, scopes: [String], credential: Credential?, repository: String?) async throws
        -> String
    {
        guard let realm = challenge.parameters["realm"], var components = URLComponents(string: realm) else {
            throw RegistryError(
                registry: registry, repository: repository, step: "authenticating",
                message: "the registry asked for a bearer token but named no realm")
        }
        var items = components.queryItems ?? []
        if let service = challenge.parameters["service"] { items.append(URLQueryItem(name: "service", value: service)) }
        for scope in scopes { items.append(URLQueryItem(name: "scope", value: scope)) }
        components.queryItems = items
        var headers: [(String, String)] = []
        if let credential {
            headers.append(
                (
                    "Authorization",
                    "Basic " + Data("\(credential.username):\(credential.secret)".utf8).base64EncodedString()
                ))
        }
        let response: HTTPResponse
        do {
            response = try await transport.send(HTTPRequest(.GET, components.url!, headers: headers))
        } catch let error as HTTPError {
            throw RegistryError(
                registry: registry, repository: repository, step: "fetching a token", message: error.description)
        }
        guard response.status == 200,
            let json = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any],
            let token = (json["token"] as? String) ?? (json["access_token"] as? String)
        else {
            throw RegistryError(
                registry: registry, repository: repository, step: "fetching a token from \(components.host ?? realm)",
                status: response.status, message: "no token in the answer",
                hint: response.status == 401
                    ? "wrong or missing credentials: run `kiln login \(registry)` or set KILN_REGISTRY_USERNAME/PASSWORD"
                    : nil)
        }
        let lifetime = (json["expires_in"] as? Double) ?? 60
        lock.withLock {
            tokens[scopes.sorted().joined(separator: " ")] = (token, Date().addingTimeInterval(max(lifetime - 10, 5)))
        }
        return token
    }

    static func parseChallenge(_ header: String) -> Challenge? {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard let space = trimmed.firstIndex(of: " ") else { return Challenge(scheme: trimmed, parameters: [:]) }
        var parameters: [String: String] = [:]
        let pattern = try! NSRegularExpression(pattern: #"(\w+)=(?:"([^"]*)"|([^,\s]*))"#)
        let rest = String(trimmed[space...])
        for match in pattern.matches(in: rest, range: NSRange(rest.startIndex..., in: rest)) {
            let key = String(rest[Range(match.range(at: 1), in: rest)!])
            let value =
                Range(match.range(at: 2), in: rest).map { String(rest[$0]) }
                ?? Range(match.range(at: 3), in: rest).map { String(rest[$0]) } ?? ""
            parameters[key] = value
        }
        return Challenge(scheme: String(trimmed[..<space]), parameters: parameters)
    }

    /// Turns an unexpected answer into an error naming the step, the registry's code and a likely fix.
    func failure(_ response: HTTPResponse, step: String, repository: String?) -> RegistryError {
        var code: String?
        var message = String(decoding: response.body.prefix(300), as: UTF8.self)
        if let json = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any],
            let errors = json["errors"] as? [[String: Any]], let first = errors.first
        {
            code = first["code"] as? String
            message = first["message"] as? String ?? message
        }
        var hint: String?
        switch (response.status, code) {
        case (401, _):
            hint =
                "wrong or missing credentials: run `kiln login \(registry)` or set KILN_REGISTRY_USERNAME and KILN_REGISTRY_PASSWORD"
        case (403, _): hint = "the credentials lack permission for this repository"
        case (404, "NAME_UNKNOWN"?): hint = "the repository does not exist; some registries need it created first"
        case (404, "MANIFEST_UNKNOWN"?), (404, nil): hint = "no such tag or digest in this repository"
        case (429, _): hint = "the registry is rate-limiting; retry later"
        case (500..., _): hint = "the registry failed; retry, and check its logs"
        default: break
        }
        return RegistryError(
            registry: registry, repository: repository, step: step, status: response.status, code: code,
            message: message.isEmpty ? HTTPResponseStatus(statusCode: response.status).reasonPhrase : message,
            hint: hint)
    }
}

extension NSLock {
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
