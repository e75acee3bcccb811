import Foundation
import KilnLayer
import KilnOCI
import KilnStore

#if canImport(Glibc)
    import Glibc
#endif

/// A build environment's root directory: a locked Debian package set unpacked the way dpkg would place it,
/// plus the few things maintainer scripts would have made (Kiln never runs them), cached under the set's lock
/// digest so an unchanged environment is prepared once.
///
/// What is missing without maintainer scripts, and how it is provided here:
/// - the `update-alternatives` links (`cc`, `c++`, `awk`, `yacc`, `lex`) and dash's `/bin/sh` link (made by
///   dash's postinst in Debian 12): a symlink to the first candidate the set contains (`alternatives`);
/// - `/etc/passwd` and `/etc/group` (base-passwd's postinst copies them): root and nogroup only;
/// - `ld.so.cache` (ldconfig): not needed, Debian's loader searches the multiarch directories anyway.
/// Anything else (a tool's own alternative, a generated config) a recipe provides in its `run` script, e.g.
/// `export CC=clang` or a symlink under /work.
public struct EnvironmentRoot: Sendable {
    /// The root directory on the host (read-only to builds).
    public var path: String
    /// What Kiln added beyond the packages' files, as `PATH -> TARGET` lines (for logs and docs).
    public var provided: [String]

    /// Symlinks that alternatives or diversions make on a Debian system: the link and its candidates in order.
    public static let alternatives: [(link: String, candidates: [String])] = [
        ("/bin/sh", ["/bin/dash", "/usr/bin/dash", "/bin/bash", "/usr/bin/bash"]),
        ("/usr/bin/cc", ["/usr/bin/gcc", "/usr/bin/clang"]),
        ("/usr/bin/c++", ["/usr/bin/g++", "/usr/bin/clang++"]),
        ("/usr/bin/awk", ["/usr/bin/mawk", "/usr/bin/gawk", "/usr/bin/original-awk"]),
        ("/usr/bin/yacc", ["/usr/bin/bison.yacc", "/usr/bin/byacc"]),
        ("/usr/bin/lex", ["/usr/bin/flex"]),
    ]

    /// Version of how a root is made from its packages; part of the cache key, raised when this code changes
    /// what a root contains.
    public static let encodingVersion = 1

    /// The cache key of an environment: its packages as locked (`NAME VERSION ARCH SHA256` lines, any order).
    public static func key(packages: [String]) -> String {
        Digest.sha256("kiln-environment-v\(encodingVersion)\n" + packages.sorted().joined(separator: "\n")).encoded
    }

    /// The root for `key` under `cache`, made from `entries` (every package's entries, in package order) when
    /// it is not there yet. Made in a temporary directory and renamed into place, so a root that exists is
    /// complete.
    public static func prepare(key: String, entries: @autoclosure () throws -> [LayerEntry], cache: String) throws
        -> EnvironmentRoot
    {
        let directory = cache + "/" + key
        let providedFile = directory + "/provided"
        if let text = try? String(contentsOfFile: providedFile, encoding: .utf8) {
            return EnvironmentRoot(path: directory + "/root", provided: text.split(separator: "\n").map(String.init))
        }
        let staged: StagedDirectory
        do {
            staged = try StagedDirectory(in: cache)
        } catch {
            throw SandboxError.environment(path: cache, detail: "\(error)")
        }
        let staging = staged.path
        try FileManager.default.createDirectory(atPath: staging + "/root", withIntermediateDirectories: true)
        // Resolved once, so the containment check in `place` compares real paths.
        guard let resolved = realpath(staging + "/root", nil) else { throw error(staging + "/root") }
        let root = String(cString: resolved)
        free(resolved)
        for entry in try entries() { try place(entry, under: root) }
        let provided = try provide(under: root)
        try Data((provided.joined(separator: "\n") + "\n").utf8).write(
            to: URL(fileURLWithPath: staging + "/provided"))
        do {
            try staged.publish(as: directory)
        } catch {
            throw SandboxError.environment(path: directory, detail: "\(error)")
        }
        return EnvironmentRoot(path: directory + "/root", provided: provided)
    }

    static func place(_ entry: LayerEntry, under root: String) throws {
        let relative = entry.path.split(separator: "/").joined(separator: "/")
        guard !relative.isEmpty else { return }
        let path = root + "/" + relative
        try makeParents(path)
        // A package's symlinked directory must not carry later files out of the root (an absolute link
        // would resolve on the host while the root is written).
        guard let parent = realpath((path as NSString).deletingLastPathComponent, nil) else { throw error(path) }
        defer { free(parent) }
        let resolved = String(cString: parent)
        guard resolved == root || resolved.hasPrefix(root + "/") else {
            throw SandboxError.environment(
                path: entry.path, detail: "its directory leads outside the root through a symlink")
        }
        switch entry.kind {
        case .directory:
            if mkdir(path, 0o755) != 0 && errno != EEXIST { throw error(path) }
            return
        case .symlink(let target):
            unlink(path)
            if symlink(target, path) != 0 { throw error(path) }
            return
        case .hardlink(let target):
            unlink(path)
            let relativeTarget = target.split(separator: "/").joined(separator: "/")
            if link(root + "/" + relativeTarget, path) != 0 { throw error(path) }
            return
        case .file(.bytes(let data)):
            unlink(path)
            try write(path) { fd in
                data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) == $0.count }
            }
        case .file(.path(let source)):
            unlink(path)
            // Copied, never hard-linked: a link changes the cached file's ctime and link count, which layer
            // writing checks to detect a file changing under it (and the input-digest cache keys on).
            let input = open(source, O_RDONLY | O_CLOEXEC)
            guard input >= 0 else {
                throw SandboxError.environment(
                    path: path, detail: "cannot copy \(source): \(String(cString: strerror(errno)))")
            }
            defer { close(input) }
            try write(path) { fd in
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n < 0 { return false }
                    if n == 0 { return true }
                    guard buffer.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, n) }) == n else { return false }
                }
            }
        }
        // setuid and setgid bits mean nothing in a user namespace; builds get the permission bits only.
        if chmod(path, mode_t(entry.mode & 0o777)) != 0 { throw error(path) }
    }

    /// Creates `path` and fills it through `fill`, with the descriptor opened close-on-exec: a child another
    /// thread starts meanwhile must not inherit it, or exec'ing this file in a sandbox fails with "Text file
    /// busy" while that child lives (Foundation's writers open without O_CLOEXEC).
    static func write(_ path: String, fill: (Int32) -> Bool) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw error(path) }
        let filled = fill(fd)
        let failure = errno
        close(fd)
        guard filled else {
            throw SandboxError.environment(path: path, detail: String(cString: strerror(failure)))
        }
    }

    /// The alternatives and account files the set lacks; see the type's documentation.
    static func provide(under root: String) throws -> [String] {
        var provided: [String] = []
        func exists(_ path: String) -> Bool {
            var info = stat()
            return lstat(root + path, &info) == 0
        }
        for (link, candidates) in alternatives where !exists(link) {
            guard let target = candidates.first(where: exists) else { continue }
            try makeParents(root + link)
            if symlink(target, root + link) != 0 { throw error(root + link) }
            provided.append("\(link) -> \(target)")
        }
        let accounts = [
            (
                "/etc/passwd",
                "root:x:0:0:root:/work:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
            ),
            ("/etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ]
        for (path, content) in accounts where !exists(path) {
            try makeParents(root + path)
            try write(root + path) { fd in
                Array(content.utf8).withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) == $0.count }
            }
            provided.append("\(path) (root and nobody only)")
        }
        return provided
    }

    static func makeParents(_ path: String) throws {
        let parent = (path as NSString).deletingLastPathComponent
        var info = stat()
        if lstat(parent, &info) == 0 { return }
        try makeParents(parent)
        if mkdir(parent, 0o755) != 0 && errno != EEXIST { throw error(parent) }
    }

    static func error(_ path: String) -> SandboxError {
        SandboxError.environment(path: path, detail: String(cString: strerror(errno)))
    }
}
