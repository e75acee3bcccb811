import Foundation
import KilnLayer

#if canImport(Glibc)
    import Glibc
#endif

/// Source trees for build steps: archives extracted into a directory, and git sources checked against the
/// tree of their pinned commit.
public enum SourceTree {
    /// Extracts `archive` (tar, tar.gz/xz/zst or zip) into `destination`, which must not exist. Member paths
    /// are checked by `ArchiveReader` (nothing can land or point outside `destination`); file modes keep their
    /// permission bits (the executable bit is part of a git tree); owners and times are not kept.
    public static func extract(archive: String, into destination: String) throws {
        guard mkdir(destination, 0o755) == 0 else {
            throw SandboxError.source(path: destination, detail: String(cString: strerror(errno)))
        }
        let reader: ArchiveReader
        do {
            reader = try ArchiveReader(path: archive)
        } catch {
            throw SandboxError.source(path: archive, detail: "\(error)")
        }
        do {
            while let member = try reader.next() {
                guard !member.path.isEmpty else { continue }
                let path = destination + "/" + member.path
                try makeParents(of: path, under: destination)
                switch member.kind {
                case .directory:
                    if mkdir(path, 0o755) != 0 && errno != EEXIST { throw posixError(path) }
                case .symlink:
                    if symlink(member.linkTarget ?? "", path) != 0 { throw posixError(path) }
                case .hardlink:
                    if link(destination + "/" + (member.linkTarget ?? ""), path) != 0 { throw posixError(path) }
                case .file:
                    try write(reader, to: path, mode: member.mode & 0o777)
                case .other:
                    throw SandboxError.source(
                        path: archive, detail: "'\(member.path)' is a device, FIFO or socket: a source tree holds none")
                }
            }
        } catch let error as SandboxError {
            throw error
        } catch {
            throw SandboxError.source(path: archive, detail: "\(error)")
        }
    }

    /// The directory an archive's content sits in: its single top-level directory when it has exactly one
    /// (GitHub's `NAME-COMMIT/`, `git archive --prefix`), else the extraction directory itself.
    public static func contentRoot(of extracted: String) -> String {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: extracted)) ?? []
        var isDirectory: ObjCBool = false
        if names.count == 1,
            FileManager.default.fileExists(atPath: extracted + "/" + names[0], isDirectory: &isDirectory),
            isDirectory.boolValue
        {
            return extracted + "/" + names[0]
        }
        return extracted
    }

    /// The directory under `extracted` whose git tree is `tree`: the extraction itself or its single top-level
    /// directory (an archive made without a prefix may hold a repository with one top-level directory, so
    /// both are tried). A mismatch names the pinned tree and the one found.
    public static func verifiedRoot(of extracted: String, tree: String, source: String) throws -> String {
        let inner = contentRoot(of: extracted)
        let innerID = try GitTree.id(of: inner)
        if innerID == tree { return inner }
        if inner != extracted, try GitTree.id(of: extracted) == tree { return extracted }
        throw SandboxError.treeMismatch(source: source, expected: tree, actual: innerID)
    }

    static func write(_ reader: ArchiveReader, to path: String, mode: UInt32) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw posixError(path) }
        defer { close(fd) }
        try reader.readContent { chunk in
            var offset = 0
            while offset < chunk.count {
                let n = Glibc.write(fd, chunk.baseAddress! + offset, chunk.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw posixError(path) }
                offset += n
            }
        }
        // The umask must not decide a file's mode: the executable bit is part of the source's identity.
        guard fchmod(fd, mode_t(mode)) == 0 else { throw posixError(path) }
    }

    /// Archives may omit directory members; parents are created as needed (never through a symlink, which
    /// `ArchiveReader` already keeps inside, but a member must not be written through one either).
    static func makeParents(of path: String, under root: String) throws {
        let parent = (path as NSString).deletingLastPathComponent
        guard parent.count > root.count else { return }
        var info = stat()
        if lstat(parent, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw SandboxError.source(path: path, detail: "its parent is not a directory in the archive")
            }
            return
        }
        try makeParents(of: parent, under: root)
        if mkdir(parent, 0o755) != 0 && errno != EEXIST { throw posixError(parent) }
    }

    static func posixError(_ path: String) -> SandboxError {
        SandboxError.source(path: path, detail: String(cString: strerror(errno)))
    }
}
