import Foundation
import KilnHTTP
import KilnOCI
import Logging
import Synchronization

public struct RegistryOptions: Sendable {
    /// Registries (host[:port]) spoken to over plain HTTP only. Loopback registries may use plain HTTP too,
    /// after a probe.
    public var insecure: Set<String>
    public var caFile: String?
    public var credentials: CredentialStore
    /// Blobs up to this size go up in one request; larger ones in chunks of `chunkSize` read from disk.
    public var monolithicLimit: Int64
    public var chunkSize: Int64
    /// Parallel blob transfers.
    public var jobs: Int
    /// Where blobs were seen in earlier runs (mount sources), read when a client starts and written back after
    /// each push and copy; nil: nothing is remembered between runs.
    public var blobLocationCache: BlobLocationCache?

    public init(
        insecure: Set<String> = [], caFile: String? = nil, credentials: CredentialStore = CredentialStore(),
        monolithicLimit: Int64 = 32 << 20, chunkSize: Int64 = 32 << 20, jobs: Int = 4,
        blobLocationCache: BlobLocationCache? = nil
    ) {
        self.blobLocationCache = blobLocationCache
        self.insecure = insecure
        self.caFile = caFile
        self.credentials = credentials
        self.monolithicLimit = monolithicLimit
        self.chunkSize = chunkSize
        self.jobs = jobs
    }
}

/// A registry's error, with where it happened and what to do about it.
public struct RegistryError: Error, CustomStringConvertible, TransientFailure {
    public var registry: String
    public var repository: String?
    public var step: String
    public var status: Int?
    public var code: String?
    public var message: String
    public var hint: String?
    /// Worth trying the operation again (a dropped connection, a 429 or 5xx answer).
    public var isTransient: Bool = false
    public var retryAfter: Double?

    public var description: String {
        var text = "\(step) failed at \(registry)"
        if let repository { text += "/\(repository)" }
        text += ": "
        if let status { text += "HTTP \(status) " }
        if let code { text += "\(code) " }
        text += message
        if let hint { text += "\n    hint: \(hint)" }
        // Upload locations carry `_state` tokens; bodies may echo credentials.
        return Redaction.redact(text)
    }

    /// The error as the retries of an upload's request leave it: final, saying how long it was tried.
    public func givingUp(attempts: Int, seconds: Double, first: Error?) -> Error {
        guard attempts > 1 else { return self }
        var error = self
        error.isTransient = false
        error.message += " (gave up after \(attempts) attempts in \(Int(seconds.rounded())) s)"
        return error
    }
}

/// A distribution-spec client for one registry: scheme discovery (decided once, shared by every job), the
/// authorization in RegistryAuth, and the endpoints in RegistryClient+Blobs / +Manifests.
public final class RegistryClient: Sendable {
    public let registry: String
    let host: String
    let transport: HTTPTransport
    let options: RegistryOptions

    /// What the client learnt from the registry so far, shared by every job using it.
    struct Session {
        var probe: Task<URL, Error>?
        var challenge: Challenge?
        var tokens: [String: (token: String, expires: Date)] = [:]
        var credentialLoaded = false
        var credential: Credential?
        var uploadedBytes: Int64 = 0
        var loadedLocations: BlobLocations?
        /// The registry answered the referrers API with 404: it has no such API (`referrers(_:_:)`).
        var lacksReferrersAPI = false
    }

    let session = Mutex(Session())

    /// Bytes this client sent as blob content (tests read it to prove nothing was re-uploaded).
    public var uploadedBytes: Int64 { session.withLock { $0.uploadedBytes } }

    public init(registry: String, host: String? = nil, transport: HTTPTransport, options: RegistryOptions) {
        self.registry = registry
        self.host = host ?? (registry == Reference.dockerHub ? "registry-1.docker.io" : registry)
        self.transport = transport
        self.options = options
    }

    /// Which repositories of this registry hold which blob: the mount sources of every push and copy through
    /// this client, read from `options.blobLocationCache` when first needed (commands that write no blob never
    /// read the file).
    public var blobLocations: BlobLocations {
        session.withLock { session in
            if let loaded = session.loadedLocations { return loaded }
            let loaded = options.blobLocationCache?.locations(for: registry) ?? BlobLocations()
            session.loadedLocations = loaded
            return loaded
        }
    }

    /// Writes what this client learnt of blob locations into the cache (when its options name one). Best
    /// effort: a cache that cannot be written only costs uploads later.
    func saveBlobLocations() {
        guard let cache = options.blobLocationCache, let known = session.withLock({ $0.loadedLocations }) else {
            return
        }
        cache.save(known, registry: registry)
    }

    /// The caller's logger, shared with the transport: auth, mounts and retries behind the user's back.
    public var logger: Logger { transport.logger }

    /// The transport's retry policy: operations of several requests (uploads) run under it as a whole.
    var policy: RetryPolicy { transport.options.retry }

    func addUploaded(_ n: Int64) {
        session.withLock { $0.uploadedBytes += n }
    }

    /// Named with --insecure: plain HTTP only, never TLS.
    var plainHTTPOnly: Bool { options.insecure.contains(registry) || options.insecure.contains(host) }

    var mayUseHTTP: Bool {
        plainHTTPOnly || Reference(registry: registry, repository: "x").isLoopback
    }

    /// `https://host/v2/`, or `http://` for a registry named --insecure, or a loopback registry whose port
    /// answers plain HTTP. Probed once; parallel callers share the one probe. The probe is retried per the
    /// policy, and a registry that keeps failing is reported as failing: it is never taken for a TLS one.
    func baseURL() async throws -> URL {
        let task: Task<URL, Error> = session.withLock { session in
            if let probe = session.probe { return probe }
            let started = Task { try await self.discover() }
            session.probe = started
            return started
        }
        do {
            return try await task.value
        } catch {
            // A failed probe is not remembered: the next operation may find the registry up.
            session.withLock { if $0.probe == task { $0.probe = nil } }
            throw error
        }
    }

    private func discover() async throws -> URL {
        try Reference.validateRegistry(registry)
        guard let http = URL(string: "http://\(host)/v2/"), let https = URL(string: "https://\(host)/v2/") else {
            throw Reference.ParseError.invalidRegistry(registry, reason: "it cannot be part of a URL")
        }
        var plainFailure: HTTPError?
        if mayUseHTTP {
            do {
                let answer = try await transport.send(HTTPRequest(.GET, http))
                // Still failing after the retries: the registry is unwell, not speaking TLS.
                if RetryPolicy.transientStatuses.contains(answer.status) {
                    throw failure(answer, step: "connecting", repository: nil)
                }
                if plainHTTPOnly || answer.status == 200 || answer.status == 401
                    || answer.header("Docker-Distribution-Api-Version") != nil
                {
                    remember(first: answer)
                    return http
                }
                // Anything else (a TLS port answers plain HTTP with 400): try TLS.
            } catch let error as HTTPError {
                if plainHTTPOnly || !Self.mayBeTLSPort(error) {
                    throw RegistryError(
                        registry: registry, step: "connecting", message: error.description,
                        isTransient: error.isTransient)
                }
                plainFailure = error
            }
        }
        do {
            let answer = try await transport.send(HTTPRequest(.GET, https))
            remember(first: answer)
            return https
        } catch let error as HTTPError {
            // Not a TLS port either: the plain-HTTP failure (a dropped connection) is the one to report.
            if let plainFailure, case .tls(_, let detail) = error.underlying, detail.contains("WRONG_VERSION_NUMBER") {
                throw RegistryError(
                    registry: registry, step: "connecting", message: plainFailure.description,
                    isTransient: plainFailure.isTransient)
            }
            throw RegistryError(
                registry: registry, step: "connecting", message: error.description,
                hint: mayUseHTTP || !Self.mayBeTLSPort(error)
                    ? nil : "if this registry only speaks plain HTTP, allow it with --insecure \(registry)",
                isTransient: error.isTransient)
        }
    }

    /// A TLS port answering plain HTTP closes or garbles the exchange; a refusal or a bad name is final.
    static func mayBeTLSPort(_ error: HTTPError) -> Bool {
        switch error.underlying {
        case .refused, .unknownHost, .timeout: return false
        default: return true
        }
    }

    private func remember(first: HTTPResponse) {
        session.withLock { session in
            if first.status == 401, let header = first.header("WWW-Authenticate") {
                session.challenge = Challenge(parsing: header)
            }
        }
    }

    /// The URL of an API path under `/v2/`; a repository or reference that cannot be part of a URL is an error.
    func url(_ path: String, repository: String?) async throws -> URL {
        guard let url = URL(string: path, relativeTo: try await baseURL())?.absoluteURL else {
            throw RegistryError(
                registry: registry, repository: repository, step: "addressing \(path)",
                message: "this name cannot be part of a URL",
                hint: "repository names are lower-case letters, digits and . _ - separated by /")
        }
        return url
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
                throw RegistryError(
                    registry: registry, repository: repository, step: step, message: error.description,
                    isTransient: error.isTransient)
            }
            if response.status == 401 && !refreshed {
                refreshed = true
                if let header = response.header("WWW-Authenticate") {
                    session.withLock { session in
                        session.challenge = Challenge(parsing: header)
                        session.tokens.removeAll()
                    }
                    continue
                }
            }
            return response
        }
    }

    /// Turns an unexpected answer into an error naming the step, the registry's code and a likely fix.
    /// The body is shown with any credential it echoes redacted.
    func failure(_ response: HTTPResponse, step: String, repository: String?) -> RegistryError {
        let body = RegistryErrorBody.decode(response.body)
        let message = Redaction.redact(
            body?.message ?? String(decoding: response.body.prefix(300), as: UTF8.self), secrets: knownSecrets)
        let code = body?.code
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
            message: message.isEmpty ? response.reasonPhrase : message,
            hint: hint, isTransient: RetryPolicy.transientStatuses.contains(response.status),
            retryAfter: RetryPolicy.parseRetryAfter(response.header("Retry-After")))
    }
}
