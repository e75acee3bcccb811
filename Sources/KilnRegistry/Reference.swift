import Foundation
import KilnOCI

/// An image reference per the distribution grammar: `[REGISTRY[:PORT]/]REPOSITORY[:TAG][@DIGEST]`, normalised
/// the way docker does (no registry means docker.io; a one-part docker.io repository gets `library/`).
public struct Reference: Sendable, Hashable, CustomStringConvertible {
    public var registry: String
    public var repository: String
    public var tag: String?
    public var digest: Digest?

    public static let dockerHub = "docker.io"

    public enum ParseError: Error, CustomStringConvertible, Equatable {
        case invalid(String, reason: String)
        case invalidRegistry(String, reason: String)
        public var description: String {
            switch self {
            case .invalidRegistry(let text, let reason):
                return
                    "'\(text)' is not a registry address: \(reason). Write HOST[:PORT], e.g. registry.example.com or 127.0.0.1:5000"
            case .invalid(let text, let reason):
                return
                    "'\(text)' is not a valid image reference: \(reason). Write REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:…"
            }
        }
    }

    public init(registry: String, repository: String, tag: String? = nil, digest: Digest? = nil) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    public init(parsing text: String) throws {
        guard !text.isEmpty, text.count <= 4096 else { throw ParseError.invalid(text, reason: "empty or too long") }
        var rest = Substring(text)
        if let at = rest.firstIndex(of: "@") {
            do {
                digest = try Digest(parsing: String(rest[rest.index(after: at)...]))
            } catch {
                throw ParseError.invalid(text, reason: "the digest after @ is malformed")
            }
            rest = rest[..<at]
        }
        // A tag is after the last ':' that follows the last '/'.
        let lastSlash = rest.lastIndex(of: "/")
        if let colon = rest.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            let t = String(rest[rest.index(after: colon)...])
            guard OCITag.isValid(t) else { throw ParseError.invalid(text, reason: "tag '\(t)' must be \(OCITag.rule)") }
            tag = t
            rest = rest[..<colon]
        }
        var parts = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts.count > 1, let first = parts.first, first.contains(".") || first.contains(":") || first == "localhost"
        {
            registry = first
            parts.removeFirst()
        } else {
            registry = Self.dockerHub
        }
        if registry == "index.docker.io" || registry == "registry-1.docker.io" { registry = Self.dockerHub }
        do {
            try Self.validateRegistry(registry)
        } catch ParseError.invalidRegistry(_, let reason) {
            throw ParseError.invalid(text, reason: reason)
        }
        if registry == Self.dockerHub && parts.count == 1 { parts.insert("library", at: 0) }
        repository = parts.joined(separator: "/")
        let component = #"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$"#
        guard !parts.isEmpty, parts.allSatisfy({ $0.range(of: component, options: .regularExpression) != nil }) else {
            throw ParseError.invalid(
                text,
                reason: "repository '\(repository)' must be lower-case path components of letters, digits and . _ -")
        }
        guard repository.count <= 255 else {
            throw ParseError.invalid(text, reason: "repository name longer than 255 characters")
        }
        if tag == nil && digest == nil { tag = "latest" }
    }

    /// Checks `HOST[:PORT]`: DNS labels or an IPv4 address (or `[IPv6]`), and a port of 1-65535. Done before any
    /// request, so a bad address is a clear error rather than an unusable URL.
    public static func validateRegistry(_ registry: String) throws {
        var host = Substring(registry)
        var port: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else {
                throw ParseError.invalidRegistry(registry, reason: "registry '\(registry)' has an unclosed [")
            }
            let rest = host[host.index(after: close)...]
            host = host[...close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else {
                    throw ParseError.invalidRegistry(registry, reason: "registry '\(registry)' has text after ]")
                }
                port = rest.dropFirst()
            }
            guard host.dropFirst().dropLast().allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw ParseError.invalidRegistry(registry, reason: "registry '\(registry)' is not an IPv6 address")
            }
        } else if let colon = host.firstIndex(of: ":") {
            port = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        let label = #"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"#
        guard
            registry.hasPrefix("[")
                || (!host.isEmpty && host.count <= 253
                    && host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy({
                        $0.range(of: label, options: .regularExpression) != nil
                    }))
        else {
            throw ParseError.invalidRegistry(
                registry, reason: "registry '\(registry)' is not a host name (letters, digits, - and .)")
        }
        if let port {
            guard let number = Int(port), (1...65535).contains(number), port.allSatisfy(\.isNumber) else {
                throw ParseError.invalidRegistry(
                    registry, reason: "registry port '\(port)' is not a number from 1 to 65535")
            }
        }
    }

    /// The registry host to contact (docker.io's API lives at registry-1.docker.io).
    public var host: String { registry == Self.dockerHub ? "registry-1.docker.io" : registry }

    /// The manifest reference for the API: the digest when pinned, else the tag.
    public var identifier: String { digest?.description ?? tag ?? "latest" }

    public var description: String {
        var s = "\(registry)/\(repository)"
        if let tag { s += ":\(tag)" }
        if let digest { s += "@\(digest)" }
        return s
    }

    /// Loopback registries may speak plain HTTP without being named insecure.
    public var isLoopback: Bool {
        let hostOnly = registry.split(separator: ":").first.map(String.init) ?? registry
        return ["localhost", "127.0.0.1", "[::1]"].contains(hostOnly) || hostOnly.hasPrefix("127.")
    }
}
