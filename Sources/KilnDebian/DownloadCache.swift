import Foundation
import KilnHTTP
import KilnOCI

#if canImport(Glibc)
    import Glibc
#endif

/// Content-addressed downloads: `<root>/sha256/<hex>`, written only after size and digest were checked
/// (temp file, fsync, rename), so a file present under its digest is that content and is reused as is.
public struct DownloadCache: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    /// `KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln/downloads`, else `~/.cache/kiln/downloads`.
    public static func defaultRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let dir = environment["KILN_CACHE_DIR"], !dir.isEmpty { return dir }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/kiln/downloads" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.cache/kiln/downloads"
    }

    public func path(sha256 hex: String) -> String { root + "/sha256/" + hex }

    /// The cached file for `hex` when present with the expected size.
    public func cached(sha256 hex: String, size: Int64?) -> String? {
        let path = path(sha256: hex)
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & 0o170000) == 0o100000 else { return nil }
        if let size, Int64(info.st_size) != size { return nil }
        return path
    }

    /// Returns the cached file, downloading and verifying it first if needed.
    public func fetch(url: String, sha256 hex: String, size: Int64?, transport: HTTPTransport) async throws -> String {
        if let hit = cached(sha256: hex, size: size) { return hit }
        guard let digest = try? Digest(parsing: "sha256:" + hex) else {
            throw DebianError.download(url: url, detail: "'\(hex)' is not a sha256 digest")
        }
        guard let target = URL(string: url) else { throw DebianError.download(url: url, detail: "not a URL") }
        try FileManager.default.createDirectory(atPath: root + "/sha256", withIntermediateDirectories: true)
        let path = path(sha256: hex)
        let answer: (response: HTTPResponse, digest: Digest?, size: Int64)
        do {
            answer = try await transport.download(
                HTTPRequest(.GET, target), to: path, expected: digest, expectedSize: size)
        } catch {
            throw DebianError.download(url: url, detail: "\(error)")
        }
        guard answer.response.status == 200 else {
            throw DebianError.download(url: url, detail: "HTTP \(answer.response.status)")
        }
        return path
    }
}
