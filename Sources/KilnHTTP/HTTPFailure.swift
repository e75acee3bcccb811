import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL

/// Turning a dependency's error into what happened, in words: the cause (refused, timed out, reset, a TLS
/// failure), never the dependency's type names or its source paths.
extension HTTPTransport {
    static func map(_ error: Error, url: URL, options: HTTPOptions) -> HTTPError {
        let host = url.host.map { name in url.port.map { "\(name):\($0)" } ?? name } ?? url.absoluteString
        if let client = error as? HTTPClientError {
            switch client {
            case .connectTimeout:
                return .timeout(
                    url: url.absoluteString, what: "connecting to \(host)", seconds: options.connectTimeout)
            case .readTimeout:
                return .timeout(
                    url: url.absoluteString, what: "waiting for data from \(host)", seconds: options.idleTimeout)
            case .deadlineExceeded:
                return .timeout(url: url.absoluteString, what: "the whole exchange", seconds: nil)
            case .tlsHandshakeTimeout:
                return .timeout(url: url.absoluteString, what: "the TLS handshake", seconds: options.connectTimeout)
            case .proxyAuthenticationRequired:
                return .connection(
                    url: url.absoluteString,
                    detail:
                        "the proxy refused Kiln's credentials (407): fix the user:password in $https_proxy/$http_proxy",
                    transient: false)
            case .invalidProxyResponse:
                return .connection(
                    url: url.absoluteString,
                    detail:
                        "the proxy refused to open a tunnel (CONNECT) to \(host): check the user:password in $https_proxy/$http_proxy, allow that port on the proxy, or name the host in $no_proxy",
                    transient: false)
            case .httpProxyHandshakeTimeout:
                return .timeout(url: url.absoluteString, what: "the proxy's CONNECT to \(host)", seconds: nil)
            case .remoteConnectionClosed:
                return .dropped(url: url.absoluteString, detail: "the server closed the connection")
            default: break
            }
        }
        // The disk, not the network: a download that cannot be written.
        let ns = error as NSError
        let chain = [ns] + [ns.userInfo[NSUnderlyingErrorKey] as? NSError].compactMap { $0 }
        if ns.domain == NSCocoaErrorDomain && ns.code == NSFileWriteOutOfSpaceError
            || chain.contains(where: { $0.domain == NSPOSIXErrorDomain && [ENOSPC, EDQUOT].contains(Int32($0.code)) })
        {
            return .file(
                path: url.absoluteString, detail: "the disk is full while downloading (\(ns.localizedDescription))")
        }
        if let ssl = error as? NIOSSLError {
            return .tls(host: host, detail: clean(String(describing: ssl)))
        }
        let text = String(describing: error)
        if text.contains("CERTIFICATE") || text.contains("handshake") || text.contains("SSL")
            || text.contains("WRONG_VERSION_NUMBER")
        {
            return .tls(host: host, detail: clean(text))
        }
        if let code = errnoCode(error) {
            switch code {
            case ECONNREFUSED:
                return .refused(host: host)
            case ENOSPC, EDQUOT:
                return .file(path: url.absoluteString, detail: String(cString: strerror(code)))
            case ECONNRESET, EPIPE, ECONNABORTED:
                return .dropped(url: url.absoluteString, detail: "the connection was reset")
            default:
                return .connection(
                    url: url.absoluteString, detail: String(cString: strerror(code)).lowercased(), transient: true)
            }
        }
        if text.contains("connectionRefused") || text.contains("Connection refused") {
            return .refused(host: host)
        }
        // A name that does not resolve.
        if text.contains("UnknownHost") || text.contains("Name or service not known")
            || (text.contains("NIOConnectionError") && text.contains("dnsAError: Optional")
                && text.contains("connectionErrors: []"))
        {
            return .unknownHost(host: url.host ?? host)
        }
        if text.contains("ioOnClosedChannel") || text.contains("outputClosed") || text.contains("inputClosed") {
            return .dropped(url: url.absoluteString, detail: "the connection was closed")
        }
        if text.contains("NIOConnectionError") {
            return .connection(url: url.absoluteString, detail: "could not connect to \(host)", transient: true)
        }
        return .connection(url: url.absoluteString, detail: clean(text), transient: true)
    }

    /// The errno under a socket error, also when it is wrapped in a connection error.
    static func errnoCode(_ error: Error) -> Int32? {
        if let io = error as? IOError { return io.errnoCode }
        // Wrapped (a connection error lists each address tried): read the first errno it names.
        let text = String(describing: error)
        guard let range = text.range(of: #"errno: \d+"#, options: .regularExpression) else { return nil }
        return Int32(text[range].dropFirst("errno: ".count))
    }

    /// Drops source locations (`/…/.build/checkouts/swift-nio-ssl/…/tls_record.cc:127`) and type noise.
    static func clean(_ text: String) -> String {
        var result = text.replacingOccurrences(
            of: #"\s*(at )?/[^\s,\])]*\.(cc|c|h|swift):\d+"#, with: "", options: .regularExpression)
        result = result.replacingOccurrences(
            of: #"error:[0-9A-Fa-f]+:[A-Za-z ]+ routines:"#, with: "",
            options: .regularExpression)
        result = result.replacingOccurrences(
            of: #"handshakeFailed\(NIOSSL\.BoringSSLError\.sslError\(\[Error: "#,
            with: "handshake failed: ", options: .regularExpression)
        result = result.replacingOccurrences(of: #"[\]\)]+$"#, with: "", options: .regularExpression)
        return result.trimmingCharacters(in: .whitespaces)
    }
}
