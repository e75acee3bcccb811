import Foundation
import KilnHTTP

/// A `WWW-Authenticate` challenge: the scheme (Basic, Bearer) and its parameters (realm, service, scope).
struct Challenge: Sendable, Equatable {
    var scheme: String
    var parameters: [String: String]

    init(scheme: String, parameters: [String: String]) {
        self.scheme = scheme
        self.parameters = parameters
    }

    /// Parses `Bearer realm="https://auth/token",service="registry"` (quoted or bare values).
    init(parsing header: String) {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard let space = trimmed.firstIndex(of: " ") else {
            self.init(scheme: trimmed, parameters: [:])
            return
        }
        var parameters: [String: String] = [:]
        let rest = String(trimmed[space...])
        let pattern = #/(\w+)=(?:"([^"]*)"|([^,\s]*))/#
        for match in rest.matches(of: pattern) {
            parameters[String(match.1)] = String(match.2 ?? match.3 ?? "")
        }
        self.init(scheme: String(trimmed[..<space]), parameters: parameters)
    }
}

/// A token endpoint's answer (the distribution token spec: `token`, or OAuth's `access_token`).
struct TokenResponse: Codable, Sendable {
    var token: String?
    var accessToken: String?
    var expiresIn: Double?

    enum CodingKeys: String, CodingKey {
        case token
        case accessToken = "access_token"
        case expiresIn = "expires_in"
    }

    var value: String? { (token?.isEmpty == false ? token : nil) ?? accessToken }
}

/// A registry's error document: `{"errors": [{"code": …, "message": …}]}`.
struct RegistryErrorBody: Codable, Sendable {
    struct Entry: Codable, Sendable {
        var code: String?
        var message: String?
    }
    var errors: [Entry]?

    static func decode(_ data: Data) -> (code: String?, message: String?)? {
        guard let body = try? JSONDecoder().decode(Self.self, from: data), let first = body.errors?.first else {
            return nil
        }
        return (first.code, first.message)
    }
}

extension RegistryClient {
    /// The Authorization header value for these scopes, if the registry wants one.
    func authorization(scopes: [String], repository: String?) async throws -> String? {
        _ = try await baseURL()
        guard let challenge = session.withLock({ $0.challenge }) else { return nil }
        let credential = try loadCredential()
        switch challenge.scheme.lowercased() {
        case "basic":
            guard let credential else { return nil }
            return Self.basic(credential)
        case "bearer":
            let key = scopes.sorted().joined(separator: " ")
            if let cached = session.withLock({ $0.tokens[key] }), cached.expires > Date() {
                return "Bearer \(cached.token)"
            }
            let token = try await fetchToken(challenge, scopes: scopes, credential: credential, repository: repository)
            return "Bearer \(token)"
        default:
            return nil
        }
    }

    static func basic(_ credential: Credential) -> String {
        "Basic " + Data("\(credential.username):\(credential.secret)".utf8).base64EncodedString()
    }

    func loadCredential() throws -> Credential? {
        if let done = session.withLock({ $0.credentialLoaded ? Optional($0.credential) : nil }) { return done }
        let found = try options.credentials.credential(for: registry)
        session.withLock { session in
            session.credential = found
            session.credentialLoaded = true
        }
        return found
    }

    /// Secrets to keep out of messages: the password and the header made from it.
    var knownSecrets: [String] {
        guard let credential = session.withLock({ $0.credential }) else { return [] }
        return [credential.secret, String(Self.basic(credential).dropFirst("Basic ".count))]
    }

    /// Whether Basic credentials may go to this token realm. Docker sends them to any realm; Kiln refuses a
    /// realm on another host over plain HTTP, where anyone on the path could read them (a registry could
    /// otherwise point the client anywhere). A registry spoken to over plain HTTP may name its own host.
    func mayReceiveCredentials(_ realm: URL) -> Bool {
        guard realm.scheme?.lowercased() == "http" else { return true }
        // The same host name on another port is the same machine; another name may be anywhere.
        let registryName = URL(string: "http://\(host)/")?.host?.lowercased()
        return realm.host?.lowercased() == registryName
    }

    /// A registry that Kiln speaks TLS to, naming a token realm over plain HTTP (on any host, its own included):
    /// credentials would cross the network in cleartext although the registry itself is protected.
    static func isDowngrade(registry base: URL, realm: URL) -> Bool {
        base.scheme?.lowercased() == "https" && realm.scheme?.lowercased() == "http"
    }

    /// The token flow: GET realm?service=…&scope=… with Basic credentials when we have them (and may send
    /// them there).
    func fetchToken(_ challenge: Challenge, scopes: [String], credential: Credential?, repository: String?) async throws
        -> String
    {
        guard let realm = challenge.parameters["realm"], var components = URLComponents(string: realm),
            ["http", "https"].contains(components.scheme?.lowercased() ?? "")
        else {
            throw RegistryError(
                registry: registry, repository: repository, step: "authenticating",
                message: "the registry asked for a bearer token but named no usable realm")
        }
        var items = components.queryItems ?? []
        if let service = challenge.parameters["service"] { items.append(URLQueryItem(name: "service", value: service)) }
        for scope in scopes { items.append(URLQueryItem(name: "scope", value: scope)) }
        components.queryItems = items
        guard let url = components.url else {
            throw RegistryError(
                registry: registry, repository: repository, step: "authenticating",
                message: "the token realm \(realm) is not a valid URL")
        }
        let base = try await baseURL()
        if credential != nil, Self.isDowngrade(registry: base, realm: url) {
            // Nothing is sent: not the credentials, not even a request without them (whose token would then
            // fail later as "wrong credentials").
            throw RegistryError(
                registry: registry, repository: repository, step: "authenticating",
                message:
                    "the registry is served over TLS but names the token realm \(realm), which is plain HTTP: Kiln does not send credentials there in cleartext",
                hint: "the registry's token realm must be an https:// URL (auth.token.realm in its configuration)")
        }
        var headers: [(String, String)] = []
        let allowed = mayReceiveCredentials(url)
        if let credential, allowed { headers.append(("Authorization", Self.basic(credential))) }
        let step = "fetching a token from \(components.host ?? realm)"
        let response: HTTPResponse
        do {
            response = try await transport.send(HTTPRequest(.GET, url, headers: headers))
        } catch let error as HTTPError {
            throw RegistryError(
                registry: registry, repository: repository, step: step, message: error.description,
                isTransient: error.isTransient)
        }
        guard response.status == 200, let answer = try? JSONDecoder().decode(TokenResponse.self, from: response.body),
            let token = answer.value
        else {
            var failed = failure(response, step: step, repository: repository)
            if response.status == 200 { failed.message = "no token in the answer" }
            if response.status == 401 || response.status == 403 {
                failed.hint =
                    credential != nil && !allowed
                    ? "the token realm \(url.host ?? realm) is another host over plain HTTP: Kiln does not send credentials there; serve it over HTTPS"
                    : "wrong or missing credentials: run `kiln login \(registry)` or set KILN_REGISTRY_USERNAME/PASSWORD"
            }
            throw failed
        }
        let lifetime = answer.expiresIn ?? 60
        session.withLock {
            $0.tokens[scopes.sorted().joined(separator: " ")] = (
                token, Date().addingTimeInterval(max(lifetime - 10, 5))
            )
        }
        return token
    }
}

extension RegistryClient {
    /// What `kiln login` checks before saving, as `docker login` does: `GET /v2/` with these credentials,
    /// sent as Basic or exchanged for a bearer token per the registry's challenge. A registry that asks for
    /// no credentials accepts any.
    public func verify(_ credential: Credential) async throws {
        session.withLock { session in
            session.credential = credential
            session.credentialLoaded = true
        }
        let step = "logging in"
        let refused = "the registry refused user \(credential.username) with this password; nothing was saved"
        let response: HTTPResponse
        do {
            response = try await send(HTTPRequest(.GET, try await baseURL()), scopes: [], step: step, repository: nil)
        } catch var error as RegistryError where error.status == 401 || error.status == 403 {
            error.hint = refused  // the token endpoint refused them
            throw error
        }
        guard response.status == 200 else {
            var failed = failure(response, step: step, repository: nil)
            if response.status == 401 { failed.hint = refused }
            throw failed
        }
    }
}
