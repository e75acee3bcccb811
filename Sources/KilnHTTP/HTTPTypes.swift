import Foundation
import KilnOCI
import KilnStore
import Logging

/// One HTTP request. Bodies are replayable (bytes, or a region of a file streamed from disk), so a retry
/// never needs the caller to rebuild them.
public struct HTTPRequest: Sendable {
    /// The methods Kiln sends. KilnHTTP's own type, so NIO stays an implementation detail of the transport.
    public enum Method: String, Sendable, CustomStringConvertible {
        case GET, HEAD, PUT, POST, PATCH, DELETE

        public var description: String { rawValue }
    }

    public enum Body: Sendable {
        case none
        case bytes(Data)
        /// `length` bytes of the file at `path` from `offset`, streamed in 1 MiB reads, each reported to
        /// `check` (when given) before it is sent.
        case file(path: String, offset: Int64, length: Int64, check: StreamedFileCheck? = nil)
        /// `length` bytes piped from another response as they arrive (a blob copied between registries), the
        /// bytes `offset ..< offset + length` of what `check` verifies. `open` starts that response afresh for
        /// every attempt, so the body is replayable without being held: only the transport's few buffers are.
        case piped(
            offset: Int64, length: Int64, check: StreamedFileCheck? = nil,
            open: @Sendable () async throws -> HTTPBodyStream)

        /// The bytes the body sends (Content-Length).
        public var length: Int64 {
            switch self {
            case .none: return 0
            case .bytes(let data): return Int64(data.count)
            case .file(_, _, let length, _), .piped(_, let length, _, _): return length
            }
        }
    }

    public var method: Method
    public var url: URL
    public var headers: [(String, String)]
    public var body: Body
    /// Safe to send again after a connection error or a 408/429/5xx (GET, HEAD, PUT of a whole document…).
    public var retryable: Bool
    /// Deadline for the whole exchange (at most the transport's overall timeout).
    public var timeout: TimeInterval?

    public init(
        _ method: Method, _ url: URL, headers: [(String, String)] = [], body: Body = .none, retryable: Bool? = nil
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
    /// How retryable requests are retried (connection errors, 408, 429, 5xx), and the deadline of every request
    /// across its attempts (renewed by progress at the policy's minimum rate).
    public var retry: RetryPolicy
    /// Seconds to open a connection (TCP and TLS).
    public var connectTimeout: Double
    /// Seconds without a byte from the server before a transfer is abandoned (a stalled body).
    public var idleTimeout: Double
    /// Seconds for one whole exchange, however steadily the bytes come.
    public var overallTimeout: Double

    public var attempts: Int { retry.attempts }

    /// What the transport does behind the user's back (see `RetryPolicy.logger`).
    public var logger: Logger {
        get { retry.logger }
        set { retry.logger = newValue }
    }

    /// Defaults: at most 20 attempts of a request within 150 s in all (`KILN_DEADLINE`), renewed while at least
    /// 1 KiB/s moves; connect 10 s (`KILN_CONNECT_TIMEOUT`), idle 60 s (`KILN_TIMEOUT`), one exchange 1 h.
    public init(
        caFile: String? = nil, attempts: Int = RetryPolicy.defaultAttempts, baseDelay: Double = 0.5,
        connectTimeout: Double? = nil, idleTimeout: Double? = nil, overallTimeout: Double = 3600,
        deadline: Double? = nil, minimumRate: Double = RetryPolicy.defaultMinimumRate,
        environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger = Logger(label: "kiln.http")
    ) {
        func positive(_ name: String) -> Double? {
            environment[name].flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil }
        }
        self.caFile = caFile
        self.retry = RetryPolicy(
            attempts: attempts, baseDelay: baseDelay,
            deadline: deadline ?? positive("KILN_DEADLINE") ?? RetryPolicy.defaultDeadline, minimumRate: minimumRate,
            logger: logger)
        self.connectTimeout = connectTimeout ?? positive("KILN_CONNECT_TIMEOUT") ?? 10
        self.idleTimeout = idleTimeout ?? positive("KILN_TIMEOUT") ?? 60
        self.overallTimeout = overallTimeout
    }
}

public enum HTTPError: Error, CustomStringConvertible, TransientFailure {
    case connection(url: String, detail: String, transient: Bool)
    /// A connection that was open and then reset or closed by the other end (or something between).
    case dropped(url: String, detail: String)
    /// The retries of a request are over: `last` is what the last attempt met, `first` what the first did when
    /// that was something else (a stall before the deadline cut the last attempt).
    indirect case gaveUp(attempts: Int, seconds: Double, last: HTTPError, first: HTTPError?)
    case refused(host: String)
    case unknownHost(host: String)
    case timeout(url: String, what: String, seconds: Double?)
    case tls(host: String, detail: String)
    case tooLarge(url: String, limit: Int)
    case digestMismatch(url: String, expected: Digest, actual: Digest)
    case sizeMismatch(url: String, expected: Int64, actual: Int64)
    case status(url: String, status: Int, body: String)
    case file(path: String, detail: String)

    /// Redacted: a URL's query tokens (`_state`, signatures) and echoed credentials never reach a message.
    public var description: String { Redaction.redact(text) }

    var text: String {
        switch self {
        case .connection(let url, let detail, _):
            return "cannot reach \(url): \(detail). Check the address and that the server is running."
        case .dropped(let url, let detail):
            return
                "\(url): \(detail) during the exchange: the server or something between (a proxy, a load balancer, an unstable network) is dropping connections"
        case .gaveUp(let attempts, let seconds, let last, let first):
            let before = first.map { "; the first attempt: \($0.text)" } ?? ""
            return "\(last.text) (gave up after \(attempts) attempts in \(Self.seconds(seconds.rounded()))\(before))"
        case .refused(let host):
            return "\(host) refused the connection: nothing listens there. Check the address and port."
        case .unknownHost(let host):
            return "\(host) is not a known host name (DNS lookup failed). Check the name and the network."
        case .timeout(let url, let what, let seconds):
            let limit = seconds.map { " (\(Self.seconds($0)))" } ?? ""
            return
                "\(url): \(what) timed out\(limit). A slow server may need a longer limit: --timeout or KILN_TIMEOUT (idle seconds), KILN_CONNECT_TIMEOUT, KILN_DEADLINE (seconds per request)."
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

    /// Worth another attempt: a dropped connection or a timeout; not a refusal, a bad name, TLS or content.
    public var isTransient: Bool {
        switch self {
        case .connection(_, _, let transient): return transient
        case .dropped, .timeout: return true
        default: return false
        }
    }

    /// What the last attempt met, when the retries are over.
    public var underlying: HTTPError {
        if case .gaveUp(_, _, let last, _) = self { return last.underlying }
        return self
    }

    public func givingUp(attempts: Int, seconds: Double, first: Error?) -> Error {
        guard attempts > 1 else { return self }
        let earlier = (first as? HTTPError)?.underlying
        return HTTPError.gaveUp(
            attempts: attempts, seconds: seconds, last: underlying,
            first: earlier.flatMap { $0.text == underlying.text ? nil : $0 })
    }

    public var retryAfter: Double? { nil }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : String(format: "%.1f s", value)
    }
}
