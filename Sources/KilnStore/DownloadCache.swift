import Foundation
import KilnOCI
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The content-addressed download cache shared by url inputs and Debian packages: `<root>/sha256/<hex>`,
/// written only after size and digest were checked (through `AtomicFileWriter`), so a file present under its
/// digest is that content. Archives unpacked from it live in slots beside it (`extracted-v2/`, `unpacked-v2/`),
/// published whole by `StagedDirectory`. Fetching over HTTP is KilnHTTP's `DownloadCache.fetch`.
public struct DownloadCache: Sendable, Hashable {
    public let root: String

    public init(root: String) { self.root = root }

    /// `$KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln/downloads`, else `~/.cache/kiln/downloads`.
    public static func defaultRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let dir = environment["KILN_CACHE_DIR"], !dir.isEmpty { return dir }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/kiln/downloads" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.cache/kiln/downloads"
    }

    public static func `default`(environment: [String: String] = ProcessInfo.processInfo.environment)
        -> DownloadCache
    {
        DownloadCache(root: defaultRoot(environment: environment))
    }

    public func path(sha256 hex: String) -> String { root + "/sha256/" + hex }

    public func path(for digest: Digest) -> String { path(sha256: digest.encoded) }

    public func contains(_ digest: Digest) -> Bool { cached(sha256: digest.encoded, size: nil) != nil }

    /// The cached file for `hex` when present (a regular file) with the expected size.
    public func cached(sha256 hex: String, size: Int64?) -> String? {
        let path = path(sha256: hex)
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        if let size, Int64(info.st_size) != size { return nil }
        return path
    }

    /// A writer for new content; the caller checks what it wrote, then commits it as `path(for: digest)`.
    public func writer() throws -> AtomicFileWriter {
        do {
            try FileManager.default.createDirectory(atPath: root + "/sha256", withIntermediateDirectories: true)
        } catch {
            throw StoreError.io(path: root + "/sha256", operation: "create the directory", detail: "\(error)")
        }
        Self.removeStaleDownloads(in: root + "/sha256")
        return try AtomicFileWriter(path: root + "/sha256/.incoming")
    }

    /// Once per directory and process: downloads a killed process left half-written (`.incoming.<pid>-…`).
    static func removeStaleDownloads(in directory: String) {
        guard cleaned.withLock({ $0.insert(directory).inserted }) else { return }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where name.hasPrefix(".incoming.") && name.hasSuffix(".tmp") {
            let pid = name.dropFirst(".incoming.".count).split(separator: "-").first.flatMap { pid_t($0) }
            if let pid, !StagedDirectory.alive(pid) { unlink(directory + "/" + name) }
        }
    }

    /// Directories already swept in this process.
    private static let cleaned = Mutex<Set<String>>([])

    /// Files a pre-seeded copy of `digest` (hard link when possible, else a copy) after checking the bytes
    /// that land in the cache. Returns false, leaving nothing behind, when the content differs.
    public func adopt(file: String, as digest: Digest) throws -> Bool {
        let writer = try self.writer()
        if link(file, writer.temporaryPath + ".link") == 0 {
            // The link shares the seeded file's inode: hash it under the name it is about to get.
            let linked = writer.temporaryPath + ".link"
            writer.discard()
            guard (try? VerifyingReader.verify(linked, expected: digest)) != nil else {
                unlink(linked)
                return false
            }
            try AtomicFile.rename(linked, over: path(for: digest))
            return true
        }
        var hasher = SHA256()
        try VerifyingReader(path: file, expected: nil).forEachChunk { chunk in
            hasher.update(chunk)
            try writer.write(chunk)
        }
        guard hasher.finalize() == digest else {
            writer.discard()
            return false
        }
        try writer.commit(as: path(for: digest))
        return true
    }

    /// The slot an archive with content `digest` is unpacked into, under `kind` (`extracted`, `unpacked`).
    public func slot(_ kind: String, _ digest: String) -> String { "\(root)/\(kind)/\(digest)" }
}
