import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Walks and moves what a build step left in its staging tree from directory descriptors, never by a host
/// path: every directory is opened relative to its parent with `O_NOFOLLOW`, so a symlink the step made
/// (`/out/etc -> /etc`) is an entry like any other and is never followed on the host.
public enum HostTree {
    /// `O_PATH` (Linux), which the Glibc module hides behind `_GNU_SOURCE`.
    static let pathOnly: Int32 = 0o10_000_000

    /// Opens `path` (absolute, made by Kiln) as a directory descriptor, refusing a symlink at its last component.
    public static func openDirectory(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw SandboxError.environment(path: path, detail: String(cString: strerror(errno))) }
        return fd
    }

    /// Opens `path` for binding into a sandbox: a directory, reached through no symlink at its last component.
    public static func openForBinding(_ path: String) throws -> Int32 {
        let fd = open(path, pathOnly | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            throw SandboxError.environment(
                path: path, detail: "cannot open it for the sandbox: \(String(cString: strerror(errno)))")
        }
        return fd
    }

    /// Where resolving a path below a directory stopped.
    public enum Resolution: Error, Equatable {
        /// `prefix` (a path below the base) is a symlink, or not a directory, so nothing below it is reached.
        case notADirectory(prefix: String, symlink: Bool)
        case missing(prefix: String)
    }

    /// The parent directory of `components` below `base`, opened without following any symlink, and the last
    /// component's name. The caller closes the descriptor.
    public static func openParent(of components: [String], below base: Int32) throws -> (fd: Int32, name: String) {
        precondition(!components.isEmpty)
        var fd = dup(base)
        for (index, name) in components.dropLast().enumerated() {
            let next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let failure = errno
            if next < 0 {
                let prefix = "/" + components[...index].joined(separator: "/")
                var info = stat()
                let exists = fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0
                close(fd)
                if !exists || failure == ENOENT { throw Resolution.missing(prefix: prefix) }
                throw Resolution.notADirectory(prefix: prefix, symlink: info.st_mode & S_IFMT == S_IFLNK)
            }
            close(fd)
            fd = next
        }
        return (fd, components.last!)
    }

    /// Path components, refusing `..` and empty paths (the recipe parser refuses them already; this is the
    /// second line).
    public static func components(_ path: String) throws -> [String] {
        let parts = path.split(separator: "/").map(String.init).filter { $0 != "." }
        guard !parts.isEmpty, !parts.contains("..") else {
            throw SandboxError.environment(path: path, detail: "not a plain path below its directory")
        }
        return parts
    }

    /// Calls `visit` for every entry below `fd` (depth first, parents before children) with its path relative
    /// to `fd`, the descriptor of its directory, its name there and its `lstat`. Returns false when `visit`
    /// returned false (stop).
    @discardableResult
    public static func walk(
        _ fd: Int32, prefix: String = "",
        visit: (_ relative: String, _ directory: Int32, _ name: String, _ info: stat) throws -> Bool
    ) throws -> Bool {
        let own = dup(fd)
        guard own >= 0, let stream = fdopendir(own) else {
            if own >= 0 { close(own) }
            throw SandboxError.environment(path: prefix, detail: String(cString: strerror(errno)))
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        for name in names.sorted() {
            var info = stat()
            guard fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            let relative = prefix.isEmpty ? name : prefix + "/" + name
            guard try visit(relative, fd, name, info) else { return false }
            if info.st_mode & S_IFMT == S_IFDIR {
                let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { continue }
                defer { close(child) }
                guard try walk(child, prefix: relative, visit: visit) else { return false }
            }
        }
        return true
    }

    /// Bytes the trees hold on disk (allocated blocks), counted until `limit` is passed (then the count so far).
    public static func diskUsage(_ paths: [String], limit: Int64) -> Int64 {
        var total: Int64 = 0
        for path in paths {
            guard let fd = try? openDirectory(path) else { continue }
            defer { close(fd) }
            _ = try? walk(fd) { _, _, _, info in
                total += Int64(info.st_blocks) * 512
                return total <= limit
            }
            if total > limit { break }
        }
        return total
    }

    /// Removes a tree Kiln made, whatever the step did to it: directories a step made unwritable are opened up
    /// first (an ordinary user cannot otherwise empty them), symlinks are removed, never followed.
    public static func remove(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            unlink(path)
            return
        }
        chmod(path, 0o700)
        if let fd = try? openDirectory(path) {
            empty(fd)
            close(fd)
        }
        rmdir(path)
    }

    /// Unlinks every non-directory below `fd` (opening up each directory before the walk descends into it),
    /// then removes the emptied directories, deepest first.
    private static func empty(_ fd: Int32) {
        var directories: [String] = []
        _ = try? walk(fd) { relative, directory, name, info in
            if info.st_mode & S_IFMT == S_IFDIR {
                fchmodat(directory, name, 0o700, 0)
                directories.append(relative)
            } else {
                unlinkat(directory, name, 0)
            }
            return true
        }
        for relative in directories.reversed() {
            unlinkat(fd, relative, AT_REMOVEDIR)
        }
    }
}
