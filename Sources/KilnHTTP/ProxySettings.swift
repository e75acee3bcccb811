import Foundation

/// An HTTP proxy: where it listens and, from `http://user:pass@host:port`, the Basic credentials it wants.
/// Its description never shows the password.
public struct Proxy: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?

    public var description: String { (username.map { "\($0):<redacted>@" } ?? "") + "\(host):\(port)" }

    /// Parses a proxy URL as curl does: the scheme may be left out (`proxy:3128` means `http://proxy:3128`), the
    /// port defaults to 1080. Only `http://` proxies are supported.
    public init(parsing text: String, variable: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let withScheme = trimmed.contains("://") ? trimmed : "http://" + trimmed
        guard let components = URLComponents(string: withScheme), let host = components.host, !host.isEmpty else {
            throw ProxyError(variable: variable, problem: "is not a proxy URL (want http://[user:pass@]host:port)")
        }
        guard components.scheme?.lowercased() == "http" else {
            throw ProxyError(
                variable: variable,
                problem: "names a \(components.scheme ?? "") proxy; Kiln speaks to http:// proxies only")
        }
        self.host = host
        port = components.port ?? 1080
        username = components.percentEncodedUser?.removingPercentEncoding
        password = components.percentEncodedPassword?.removingPercentEncoding
    }
}

/// A proxy variable Kiln cannot use; the message names the variable, never its value (it may hold a password).
public struct ProxyError: Error, CustomStringConvertible {
    public var variable: String
    public var problem: String
    public var description: String { "$\(variable) \(problem): fix or unset it" }
}

/// `http_proxy` / `https_proxy` / `no_proxy` (lower case first, then upper case), with curl's `NO_PROXY`
/// rules: comma-separated host names, each also matching its subdomains (a leading dot changes nothing), `*`
/// for every host, an optional `:port` limiting the entry to that port; IP addresses match literally.
public struct ProxySettings: Sendable, Equatable {
    public var http: Proxy?
    public var https: Proxy?
    public var noProxy: [String]

    public init(http: Proxy? = nil, https: Proxy? = nil, noProxy: [String] = []) {
        self.http = http
        self.https = https
        self.noProxy = noProxy
    }

    public init(environment: [String: String]) throws {
        func value(_ name: String) -> (String, String)? {
            for variable in [name.lowercased(), name.uppercased()] {
                if let text = environment[variable], !text.trimmingCharacters(in: .whitespaces).isEmpty {
                    return (variable, text)
                }
            }
            return nil
        }
        http = try value("http_proxy").map { try Proxy(parsing: $0.1, variable: $0.0) }
        https = try value("https_proxy").map { try Proxy(parsing: $0.1, variable: $0.0) }
        noProxy = (value("no_proxy")?.1 ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }.filter { !$0.isEmpty }
    }

    /// The proxy a request to this URL goes through, or nil to connect directly.
    public func proxy(for url: URL) -> Proxy? {
        let proxy = url.scheme?.lowercased() == "https" ? https : http
        guard let proxy, let host = url.host else { return proxy }
        let port = url.port ?? (url.scheme?.lowercased() == "https" ? 443 : 80)
        return bypasses(host: host, port: port) ? nil : proxy
    }

    /// Whether `NO_PROXY` sends this host (and port) direct.
    public func bypasses(host: String, port: Int) -> Bool {
        let host = Self.bare(host.lowercased())
        for entry in noProxy {
            if entry == "*" { return true }
            var name = entry
            // host:port, [v6]:port; a bare IPv6 address has colons but no port.
            if let colon = entry.lastIndex(of: ":"), entry.hasPrefix("[") || entry.filter({ $0 == ":" }).count == 1 {
                guard let wanted = Int(entry[entry.index(after: colon)...]) else { continue }
                guard wanted == port else { continue }
                name = String(entry[..<colon])
            }
            name = Self.bare(name)
            if name.hasPrefix(".") { name.removeFirst() }
            guard !name.isEmpty else { continue }
            if host == name || (!Self.isAddress(host) && host.hasSuffix("." + name)) { return true }
        }
        return false
    }

    /// An IP address matches only literally, never as a domain suffix.
    static func isAddress(_ host: String) -> Bool {
        host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
    }

    /// `[::1]` → `::1`.
    static func bare(_ host: String) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }
}
