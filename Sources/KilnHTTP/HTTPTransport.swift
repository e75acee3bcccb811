import AsyncHTTPClient
import Foundation
import KilnOCI
import NIOCore
import NIOHTTP1
import NIOSSL

/// One HTTP request. Bodies are replayable (bytes, or a region of a file streamed from disk), so a retry
/// never needs the caller to rebuild them.
public struct HTTPRequest: Sendable {
    public enum Body: Sendable {
        case none
        case bytes(Data)
        /// `length` bytes of the file at `path` from `offset`, streamed in 1 MiB reads.
        case file(path: String, offset: Int64, length: Int64)
    }

    public var method: HTTPMethod
    public var url: URL
    public var headers: [(String, String)]
    public var body: Body
    /// Safe to send again after a connection error or a 408/429/5xx (GET, HEAD, PUT of a whole document…).
    public var retryable: Bool
    /// Deadline for the whole exchange.
    public var timeout: TimeInterval = 3600

    public init(
        _ method: HTTPMethod, _ url: URL, headers: [(String, String)] = [], body: Body = .none, retryable: Bool? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.retryable = retryable ?? [.GET, .HEAD, .DELETE].contains(method)
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: Data
    /// The URL that answered (after redirects).
    public var url: URL

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

public struct HTTPOptions: Sendable {
    /// A PEM file of extra certificate authorities to trust (besides the system's).
    public var caFile: String?
    /// Attempts for retryable requests (connection errors, 408, 429, 5xx).
    public var attempts: Int
    /// First back-off delay; doubled each attempt, with jitter, capped at 30 s. Retry-After wins when given.
    public var baseDelay: Double

    public init(caFile: String? = nil, attempts: Int = 5, baseDelay: Double = 0.5) {
        self.caFile = caFile
        self.attempts = attempts
        self.baseDelay = baseDelay
    }
}

public enum HTTPError: Error, CustomStringConvertible {
    case connection(url: String, detail: String)
    case tls(host: String, detail: String)
    case tooLarge(url: String, limit: Int)
    case digestMismatch(url: String, expected: Digest, actual: Digest)
    case sizeMismatch(url: String, expected: Int64, actual: Int64)
    case status(url: String, status: Int, body: String)
    case file(path: String, detail: String)

    public var description: String {
        switch self {
        case .connection(let url, let detail):
            return "cannot reach \(url): \(detail). Check the address and that the server is running."
        case .tls(let host, let detail):
            return
                "TLS with \(host) failed: \(detail). If the registry uses a private CA, pass it with --ca-file; for a plain-HTTP registry, name it with --insecure."
        case .tooLarge(let url, let limit):
            return "\(url) answered with more than \(limit) bytes where a small document was expected"
        case .digestMismatch(let url, let expected, let actual):
            return "content from \(url) has digest \(actual), expected \(expected): refusing it (nothing was stored)"
        case .sizeMismatch(let url, let expected, let actual):
            return "content from \(url) is \(actual) bytes, expected \(expected): refusing it (nothing was stored)"
        case .status(let url, let status, let body):
            return "\(url) answered HTTP \(status)\(body.isEmpty ? "" : ": " + body.prefix(300))"
        case .file(let path, let detail):
            return "\(path): \(detail)"
        }
    }
}

/// HTTP over AsyncHTTPClient: certificate verification on, retries with back-off and jitter, redirects
/// followed by hand so credentials never go to another host, bodies streamed from and to disk.
public final class HTTPTransport: Sendable {
    let client: HTTPClient
    public let options: HTTPOptions

    public init(options: HTTPOptions = HTTPOptions()) throws {
        // A peer that resets a connection mid-write must give an error, not kill the process with SIGPIPE
        // (seen in the fault-injection tests). Nothing in Kiln relies on SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        self.options = options
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile = options.caFile {
            guard FileManager.default.isReadableFile(atPath: caFile) else {
                throw HTTPError.file(path: caFile, detail: "CA file not found or not readable")
            }
            tls.additionalTrustRoots = [.file(caFile)]
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow)
        configuration.timeout = .init(connect: .seconds(15), read: .seconds(300))
        configuration.decompression = .disabled
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    /// A transport dropped without `shutdown()` (an error path) must not take the process down.
    deinit {
        try? client.syncShutdown()
    }

    /// Sends a request and collects the answer's body (up to `limit` bytes: manifests, errors, tokens).
    public func send(_ request: HTTPRequest, limit: Int = 16 << 20) async throws -> HTTPResponse {
        try await withRetries(request) { request in
            let response = try await self.execute(request)
            var body = Data()
            for try await buffer in response.body {
                body.append(contentsOf: buffer.readableBytesView)
                if body.count > limit { throw HTTPError.tooLarge(url: request.url.absoluteString, limit: limit) }
            }
            return HTTPResponse(
                status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: body,
                url: request.url)
        }
    }

    /// Runs `attempt`, retrying retryable requests on connection errors and 408/429/5xx answers.
    func withRetries<T>(_ request: HTTPRequest, _ attempt: (HTTPRequest) async throws -> T) async throws -> T {
        var tries = 0
        while true {
            tries += 1
            let last = !request.retryable || tries >= options.attempts
            do {
                let result = try await attempt(request)
                if !last, let status = Self.status(of: result), Self.retryStatuses.contains(status) {
                    try await Task.sleep(nanoseconds: delay(tries, retryAfter: Self.retryAfter(of: result)))
                    continue
                }
                return result
            } catch let error as HTTPError {
                throw error
            } catch {
                let mapped = Self.map(error, url: request.url)
                if case .tls = mapped { throw mapped }
                if last { throw mapped }
                try await Task.sleep(nanoseconds: delay(tries, retryAfter: nil))
            }
        }
    }

    static let retryStatuses: Set<Int> = [408, 429, 500, 502, 503, 504]

    static func status(of result: Any) -> Int? {
        if let r = result as? HTTPResponse { return r.status }
        if let r = result as? (response: HTTPResponse, digest: Digest?, size: Int64) { return r.response.status }
        return nil
    }

    static func retryAfter(of result: Any) -> Double? {
        let response =
            (result as? HTTPResponse) ?? (result as? (response: HTTPResponse, digest: Digest?, size: Int64))?.response
        return response?.header("Retry-After").flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }
    }

    func delay(_ attempt: Int, retryAfter: Double?) -> UInt64 {
        if let retryAfter { return UInt64(min(retryAfter, 60) * 1e9) }
        let base = min(options.baseDelay * pow(2, Double(attempt - 1)), 30)
        return UInt64(base * Double.random(in: 0.5...1.0) * 1e9)
    }

    static func map(_ error: Error, url: URL) -> HTTPError {
        let text = String(describing: error)
        if error is NIOSSLError || text.contains("CERTIFICATE") || text.contains("handshake") || text.contains("SSL") {
            return .tls(host: url.host ?? "?", detail: text)
        }
        return .connection(url: url.absoluteString, detail: text)
    }

    /// One exchange, following redirects for GET/HEAD; Authorization is dropped when the host changes.
    func execute(_ request: HTTPRequest) async throws -> HTTPClientResponse {
        var current = request
        for _ in 0..<6 {
            var r = HTTPClientRequest(url: current.url.absoluteString)
            r.method = current.method
            for (name, value) in current.headers { r.headers.add(name: name, value: value) }
            switch current.body {
            case .none:
                if [.PUT, .POST, .PATCH].contains(current.method) {
                    r.headers.replaceOrAdd(name: "Content-Length", value: "0")
                }
            case .bytes(let data):
                r.body = .bytes(ByteBuffer(bytes: data))
            case .file(let path, let offset, let length):
                r.body = .stream(FileChunks(path: path, offset: offset, length: length), length: .known(length))
            }
            let response = try await client.execute(r, timeout: .milliseconds(Int64(current.timeout * 1000)))
            let code = Int(response.status.code)
            guard [301, 302, 303, 307, 308].contains(code), [.GET, .HEAD].contains(current.method),
                let location = response.headers.first(name: "location"),
                let next = URL(string: location, relativeTo: current.url)?.absoluteURL
            else { return response }
            if next.host != current.url.host || next.port != current.url.port {
                current.headers.removeAll { $0.0.lowercased() == "authorization" }
            }
            current.url = next
        }
        throw HTTPError.connection(url: request.url.absoluteString, detail: "too many redirects")
    }
}

/// A file region as an async sequence of 1 MiB buffers (request bodies streamed from disk).
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String
    let offset: Int64
    let length: Int64

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle?
        var remaining: Int64
        let path: String

        mutating func next() async throws -> ByteBuffer? {
            guard remaining > 0, let handle else { return nil }
            let count = Int(Swift.min(remaining, 1 << 20))
            guard let data = try handle.read(upToCount: count), !data.isEmpty else {
                throw HTTPError.file(path: path, detail: "file ended early while uploading")
            }
            remaining -= Int64(data.count)
            if remaining == 0 { try? handle.close() }
            return ByteBuffer(bytes: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        let handle = FileHandle(forReadingAtPath: path)
        try? handle?.seek(toOffset: UInt64(offset))
        return AsyncIterator(handle: handle, remaining: length, path: path)
    }
}
