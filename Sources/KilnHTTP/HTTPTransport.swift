import AsyncHTTPClient
import Foundation
import KilnOCI
import KilnStore
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// HTTP over AsyncHTTPClient: certificate verification on, retries with back-off and jitter, redirects
/// followed by hand so credentials never go to another host, bodies streamed from and to disk. Requests go
/// through `http_proxy` / `https_proxy` (tunnelled with CONNECT, plain HTTP too) unless `no_proxy` names their
/// host. AsyncHTTPClient's proxy is a setting of the whole client, so there is one client per proxy beside
/// the direct one, chosen per request.
public final class HTTPTransport: Sendable {
    let direct: HTTPClient
    let proxied: [Proxy: HTTPClient]
    public let options: HTTPOptions
    public let proxies: ProxySettings

    /// The caller's logger (`HTTPOptions.logger`), for the modules that speak through this transport.
    public var logger: Logger { options.logger }

    /// `proxies` nil: from the process's environment.
    public init(options: HTTPOptions = HTTPOptions(), proxies: ProxySettings? = nil) throws {
        // A peer that resets a connection mid-write must give an error, not kill the process with SIGPIPE
        // (seen in the fault-injection tests). Nothing in Kiln relies on SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        self.options = options
        let proxies = try proxies ?? ProxySettings(environment: ProcessInfo.processInfo.environment)
        self.proxies = proxies
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile = options.caFile {
            guard FileManager.default.isReadableFile(atPath: caFile) else {
                throw HTTPError.file(path: caFile, detail: "CA file not found or not readable")
            }
            tls.additionalTrustRoots = [.file(caFile)]
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow)
        configuration.timeout = .init(
            connect: .milliseconds(Int64(options.connectTimeout * 1000)),
            read: .milliseconds(Int64(options.idleTimeout * 1000)))
        configuration.decompression = .disabled
        // Kiln's retry policy is the only one: the client must not also retry connecting until the timeout
        // (a closed port would take the whole connect timeout to report).
        configuration.connectionPool.retryConnectionEstablishment = false
        direct = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        var proxied: [Proxy: HTTPClient] = [:]
        for proxy in Set([proxies.http, proxies.https].compactMap { $0 }) {
            var through = configuration
            // Plain-HTTP requests are forwarded to the proxy; HTTPS ones tunnel through it with CONNECT.
            through.proxy = .server(
                host: proxy.host, port: proxy.port,
                authorization: proxy.username.map { .basic(username: $0, password: proxy.password ?? "") })
            proxied[proxy] = HTTPClient(eventLoopGroupProvider: .singleton, configuration: through)
        }
        self.proxied = proxied
    }

    /// The client for this URL: through its proxy, or direct.
    func client(for url: URL) -> HTTPClient {
        proxies.proxy(for: url).flatMap { proxied[$0] } ?? direct
    }

    public func shutdown() async {
        try? await direct.shutdown()
        for client in proxied.values { try? await client.shutdown() }
    }

    /// A transport dropped without `shutdown()` (an error path) must not take the process down.
    deinit {
        try? direct.syncShutdown()
        for client in proxied.values { try? client.syncShutdown() }
    }

    /// Sends a request and collects the answer's body (up to `limit` bytes: manifests, errors, tokens).
    public func send(_ request: HTTPRequest, limit: Int = 16 << 20) async throws -> HTTPResponse {
        try await withRetries(request) { request, clock in
            let response = try await self.execute(request, clock: clock)
            var body = Data()
            for try await buffer in response.body {
                clock.progress(buffer.readableBytes)
                body.append(contentsOf: buffer.readableBytesView)
                if body.count > limit { throw HTTPError.tooLarge(url: request.url.absoluteString, limit: limit) }
            }
            return HTTPResponse(
                status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: body,
                url: request.url)
        }
    }

    /// Runs `attempt` under the retry policy when the request is retryable (once otherwise): connection
    /// errors and 408/429/5xx answers are tried again, honouring Retry-After. The last answer is returned as is.
    /// Every attempt, and the waits between them, run on one `RequestClock`: the request is given up when its
    /// deadline passes without progress at the minimum rate (a stall, a trickle), whatever attempt it is in.
    func withRetries<T: Sendable>(
        _ request: HTTPRequest, _ attempt: @escaping @Sendable (HTTPRequest, RequestClock) async throws -> T
    ) async throws -> T {
        let policy = request.retryable ? options.retry : options.retry.once
        let clock = policy.clock()
        let exchange = min(request.timeout ?? options.overallTimeout, options.overallTimeout)
        do {
            return try await policy.run("\(request.method) \(request.url.path)", clock: clock) { number in
                let result: T
                do {
                    result = try await Self.within(exchange, clock: clock, url: request.url) {
                        try await attempt(request, clock)
                    }
                } catch let error as HTTPError {
                    throw error
                } catch let error as StoreError {
                    // The body's own file failed its check (a corrupt blob): not the network's fault.
                    throw error
                } catch {
                    throw Self.map(error, url: request.url, options: options)
                }
                if number < policy.attempts, let response = Self.response(of: result),
                    RetryPolicy.transientStatuses.contains(response.status)
                {
                    throw TransientAnswer(
                        result: result, retryAfter: RetryPolicy.parseRetryAfter(response.header("Retry-After")))
                }
                return result
            }
        } catch let answer as TransientAnswer<T> {
            return answer.result
        }
    }

    /// Runs one exchange (connect, headers and the whole body) within `seconds` and within the request's clock:
    /// the client's own deadline covers the answer's head only, and a server trickling a byte at a time never
    /// trips the idle timeout. The clock is read again whenever it would expire, as progress may have renewed it.
    static func within<T: Sendable>(
        _ seconds: Double, clock: RequestClock, url: URL, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                let end = Date().addingTimeInterval(seconds)
                while true {
                    let left = min(end.timeIntervalSinceNow, clock.remaining)
                    if left <= 0 { return nil }
                    try await Task.sleep(nanoseconds: UInt64(min(left, 86400) * 1e9) + 1_000_000)
                }
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let result = first else {
                if clock.remaining <= 0 {
                    throw HTTPError.timeout(
                        url: url.absoluteString,
                        what:
                            "the request, with less than \(Self.rate(clock.minimumRate)) moving across its attempts,",
                        seconds: clock.budget)
                }
                throw HTTPError.timeout(url: url.absoluteString, what: "the whole exchange", seconds: seconds)
            }
            return result
        }
    }

    static func rate(_ bytesPerSecond: Double) -> String {
        bytesPerSecond >= 1024 && bytesPerSecond.truncatingRemainder(dividingBy: 1024) == 0
            ? "\(Int(bytesPerSecond / 1024)) KiB/s" : "\(Int(bytesPerSecond)) B/s"
    }

    /// A 408/429/5xx answer, thrown so the policy tries again.
    struct TransientAnswer<T: Sendable>: TransientFailure, CustomStringConvertible {
        var result: T
        var retryAfter: Double?
        var isTransient: Bool { true }
        var description: String {
            HTTPTransport.response(of: result).map { "HTTP \($0.status)" } ?? "a transient answer"
        }
    }

    static func response(of result: Any) -> HTTPResponse? {
        (result as? HTTPResponse) ?? (result as? (response: HTTPResponse, digest: Digest?, size: Int64))?.response
    }

    /// Whether a redirect may carry the request's Authorization: to the same host and port only, and never from
    /// TLS to plain HTTP (where anyone on the path could read it).
    static func keepsAuthorization(from: URL, to next: URL) -> Bool {
        next.host == from.host && next.port == from.port
            && !(from.scheme?.lowercased() == "https" && next.scheme?.lowercased() != "https")
    }

    /// One exchange, following redirects for GET/HEAD; Authorization is dropped when the host changes. Bytes of a
    /// streamed request body count as progress on `clock`.
    func execute(_ request: HTTPRequest, clock: RequestClock) async throws -> HTTPClientResponse {
        var current = request
        for _ in 0..<6 {
            var r = HTTPClientRequest(url: current.url.absoluteString)
            r.method = NIOHTTP1.HTTPMethod(rawValue: current.method.rawValue)
            for (name, value) in current.headers { r.headers.add(name: name, value: value) }
            switch current.body {
            case .none:
                if [.PUT, .POST, .PATCH].contains(current.method) {
                    r.headers.replaceOrAdd(name: "Content-Length", value: "0")
                }
            case .bytes(let data):
                r.body = .bytes(ByteBuffer(bytes: data))
            case .file(let path, let offset, let length, let check):
                r.body = .stream(
                    FileChunks(path: path, offset: offset, length: length, check: check, clock: clock),
                    length: .known(length))
            case .piped(let offset, let length, let check, let open):
                r.body = try await pipedBody(offset: offset, length: length, check: check, clock: clock, open: open)
            }
            let deadline = min(current.timeout ?? options.overallTimeout, options.overallTimeout)
            options.logger.trace("\(Redaction.redact("\(current.method) \(current.url.absoluteString)"))")
            let response = try await client(for: current.url).execute(r, timeout: .milliseconds(Int64(deadline * 1000)))
            let code = Int(response.status.code)
            options.logger.trace(
                "\(Redaction.redact("\(current.method) \(current.url.absoluteString)")): HTTP \(code)")
            guard [301, 302, 303, 307, 308].contains(code), [.GET, .HEAD].contains(current.method),
                let location = response.headers.first(name: "location"),
                let next = URL(string: location, relativeTo: current.url)?.absoluteURL
            else { return response }
            if !Self.keepsAuthorization(from: current.url, to: next) {
                current.headers.removeAll { $0.0.lowercased() == "authorization" }
            }
            current.url = next
        }
        throw HTTPError.connection(url: request.url.absoluteString, detail: "too many redirects", transient: false)
    }
}

/// A file region as an async sequence of 1 MiB buffers (request bodies streamed from disk), each shown to the
/// body's `StreamedFileCheck` before it is handed out.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String
    let offset: Int64
    let length: Int64
    let check: StreamedFileCheck?
    /// Each chunk handed to the client counts as progress of the request.
    let clock: RequestClock?

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle?
        var position: Int64
        var remaining: Int64
        let path: String
        let check: StreamedFileCheck?
        let clock: RequestClock?

        mutating func next() async throws -> ByteBuffer? {
            guard remaining > 0, let handle else { return nil }
            let count = Int(Swift.min(remaining, 1 << 20))
            guard let data = try handle.read(upToCount: count), !data.isEmpty else {
                throw HTTPError.file(path: path, detail: "file ended early while uploading")
            }
            if let check {
                let at = position
                try data.withUnsafeBytes { try check.check($0, at: at) }
            }
            position += Int64(data.count)
            remaining -= Int64(data.count)
            clock?.progress(data.count)
            if remaining == 0 { try? handle.close() }
            return ByteBuffer(bytes: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        let handle = FileHandle(forReadingAtPath: path)
        try? handle?.seek(toOffset: UInt64(offset))
        return AsyncIterator(
            handle: handle, position: offset, remaining: length, path: path, check: check, clock: clock)
    }
}

extension HTTPResponse {
    /// The standard phrase for the status ("Not Found"), for an answer that carries no message of its own.
    public var reasonPhrase: String { HTTPResponseStatus(statusCode: status).reasonPhrase }
}
