import CCrypto
import Foundation
import KilnOCI

#if canImport(Glibc)
    import Glibc
#endif

/// The git tree id of a directory on disk, computed the way `git write-tree` would for the same files.
///
/// A git source is pinned by commit, and a commit names exactly one tree. Comparing the tree id of what was
/// extracted with the pinned one makes the pin independent of how a server packs or compresses an archive:
/// GitHub's tarball, `git archive` output and a clone without `.git` all give the same id.
///
/// Git's object format: a blob is `sha1("blob SIZE\0" + bytes)`; a tree is `sha1("tree SIZE\0" + entries)`,
/// each entry `MODE NAME\0` followed by the 20 raw bytes of the child's id, in git's order (bytewise, with a
/// directory's name compared as if it ended in `/`). Modes are `100644`, `100755` (owner-executable), `120000`
/// (symlink, whose blob is its target) and `40000` (tree). Empty directories have no place in git and are
/// skipped, as are `.git` directories at any depth.
public enum GitTree {
    /// The 40 hex digits of the tree id of `directory`.
    public static func id(of directory: String) throws -> String {
        guard let tree = try treeID(directory) else { return hex(try object("tree", Data())) }
        return hex(tree)
    }

    /// Whether `text` looks like a full object id (40 lower-case hex digits).
    public static func isObjectID(_ text: String) -> Bool {
        text.count == 40 && text.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
    }

    /// A directory's tree id, or nil when it holds nothing git would record.
    static func treeID(_ directory: String) throws -> Data? {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw SandboxError.source(path: directory, detail: "cannot list the directory: \(error)")
        }
        var entries: [(sortKey: [UInt8], mode: String, name: String, id: Data)] = []
        for name in names where name != ".git" {
            let path = directory + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0 else {
                throw SandboxError.source(path: path, detail: String(cString: strerror(errno)))
            }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                guard let id = try treeID(path) else { continue }
                entries.append((Array((name + "/").utf8), "40000", name, id))
            case S_IFLNK:
                let target = try linkTarget(path)
                entries.append((Array(name.utf8), "120000", name, try object("blob", target)))
            case S_IFREG:
                let mode = info.st_mode & S_IXUSR != 0 ? "100755" : "100644"
                entries.append((Array(name.utf8), mode, name, try blobID(path, size: Int(info.st_size))))
            default:
                throw SandboxError.source(
                    path: path, detail: "a device, FIFO or socket cannot be part of a git tree")
            }
        }
        guard !entries.isEmpty else { return nil }
        entries.sort { $0.sortKey.lexicographicallyPrecedes($1.sortKey) }
        var body = Data()
        for entry in entries {
            body.append(contentsOf: Array("\(entry.mode) \(entry.name)".utf8) + [0])
            body.append(entry.id)
        }
        return try object("tree", body)
    }

    static func linkTarget(_ path: String) throws -> Data {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count)
        guard count >= 0 else { throw SandboxError.source(path: path, detail: String(cString: strerror(errno))) }
        return Data(buffer[0..<count])
    }

    /// A file's blob id, streamed so a large file is never held in memory.
    static func blobID(_ path: String, size: Int) throws -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw SandboxError.source(path: path, detail: String(cString: strerror(errno))) }
        defer { close(fd) }
        let hasher = SHA1()
        hasher.update(Data("blob \(size)\0".utf8))
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var total = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw SandboxError.source(path: path, detail: String(cString: strerror(errno))) }
            if n == 0 { break }
            total += n
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        guard total == size else { throw SandboxError.source(path: path, detail: "the file changed while hashed") }
        return hasher.finalize()
    }

    static func object(_ type: String, _ body: Data) throws -> Data {
        let hasher = SHA1()
        hasher.update(Data("\(type) \(body.count)\0".utf8))
        hasher.update(body)
        return hasher.finalize()
    }

    static func hex(_ id: Data) -> String { Hex.encode(id) }
}

/// OpenSSL's SHA-1, for git object ids only (git's format fixes the algorithm; nothing here relies on SHA-1
/// for security: the pin that matters is the commit's tree as recorded in the recipe and lock).
final class SHA1 {
    private let context: OpaquePointer

    init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha1(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    func update(_ data: Data) {
        data.withUnsafeBytes { update($0) }
    }

    func update(_ buffer: UnsafeRawBufferPointer) {
        if buffer.count > 0 { EVP_DigestUpdate(context, buffer.baseAddress, buffer.count) }
    }

    func finalize() -> Data {
        var out = [UInt8](repeating: 0, count: 20)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        return Data(out)
    }
}
