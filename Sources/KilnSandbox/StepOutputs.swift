import Foundation
import KilnOCI

#if canImport(Glibc)
    import Glibc
#endif

/// A build step's declared outputs, taken from its staging tree after the sandbox is gone (so nothing of the
/// step still runs to race with), by `HostTree`'s descriptor walks:
/// - an output that *is* a symlink is moved as a symlink (it stays one in the image);
/// - an output path that goes *through* a symlink is refused, naming the link: nothing is ever moved out of a
///   path Kiln did not create;
/// - only regular files, directories and symlinks are kept; setuid, setgid and sticky bits are cleared, and
///   everything becomes the store owner's (when Kiln runs as root, the step's files belong to its sandbox uid).
public enum StepOutputs {
    /// Moves each output (`/out/…`, `/work/…`, as the sandbox sees them) from `staging` to the same path
    /// under `result`, then normalises `result` as above.
    public static func collect(_ outputs: [String], build: String, staging: String, into result: String) throws {
        let stagingFD = try HostTree.openDirectory(staging)
        defer { close(stagingFD) }
        let resultFD = try HostTree.openDirectory(result)
        defer { close(resultFD) }
        for output in outputs {
            let components = try HostTree.components(output)
            let source: (fd: Int32, name: String)
            do {
                source = try HostTree.openParent(of: components, below: stagingFD)
            } catch let stop as HostTree.Resolution {
                throw refusal(stop, build: build, output: output)
            }
            defer { close(source.fd) }
            var info = stat()
            guard fstatat(source.fd, source.name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw SandboxError.missingOutput(build: build, path: output)
            }
            let target = try makeParents(of: components, below: resultFD)
            defer { close(target) }
            guard renameat(source.fd, source.name, target, source.name) == 0 else {
                throw SandboxError.environment(
                    path: result + output, detail: "cannot store the output: \(String(cString: strerror(errno)))")
            }
        }
        try normalise(resultFD, build: build)
    }

    /// The host path of `path` (absolute, e.g. `/out/bin/x`) in a stored result, checked to be reached through
    /// real directories only. The last component may be a symlink: it is added as one, never followed.
    public static func resolve(_ path: String, in result: String, build: String) throws -> String {
        let fd = try HostTree.openDirectory(result)
        defer { close(fd) }
        let components = try HostTree.components(path)
        do {
            let parent = try HostTree.openParent(of: components, below: fd)
            close(parent.fd)
        } catch let stop as HostTree.Resolution {
            throw refusal(stop, build: build, output: path)
        }
        return result + "/" + components.joined(separator: "/")
    }

    static func refusal(_ stop: HostTree.Resolution, build: String, output: String) -> SandboxError {
        switch stop {
        case .missing:
            return .missingOutput(build: build, path: output)
        case .notADirectory(let prefix, let symlink):
            return .outputThroughLink(build: build, path: output, through: prefix, symlink: symlink)
        }
    }

    private static func makeParents(of components: [String], below base: Int32) throws -> Int32 {
        var fd = dup(base)
        for name in components.dropLast() {
            if mkdirat(fd, name, 0o755) != 0 && errno != EEXIST {
                close(fd)
                throw SandboxError.environment(path: name, detail: String(cString: strerror(errno)))
            }
            let next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            close(fd)
            guard next >= 0 else {
                throw SandboxError.environment(path: name, detail: String(cString: strerror(errno)))
            }
            fd = next
        }
        return fd
    }

    /// Refuses special files, clears the set-id and sticky bits, and gives every entry to this process's uid.
    static func normalise(_ fd: Int32, build: String) throws {
        let owner = (uid: geteuid(), gid: getegid())
        try HostTree.walk(fd) { relative, directory, name, info in
            let kind = info.st_mode & S_IFMT
            guard kind == S_IFREG || kind == S_IFDIR || kind == S_IFLNK else {
                throw SandboxError.outputKind(build: build, path: "/" + relative, kind: describe(kind))
            }
            if info.st_uid != owner.uid || info.st_gid != owner.gid {
                fchownat(directory, name, owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW)
            }
            // chown clears set-id bits of files already; directories keep theirs, so clear them explicitly.
            if kind != S_IFLNK, info.st_mode & 0o7000 != 0 {
                fchmodat(directory, name, info.st_mode & 0o777, 0)
            }
            if kind == S_IFDIR, info.st_mode & 0o700 != 0o700 {
                // A directory the step left unreadable to its owner could not be walked or layered.
                fchmodat(directory, name, (info.st_mode & 0o777) | 0o700, 0)
            }
            return true
        }
    }

    static func describe(_ kind: mode_t) -> String {
        switch kind {
        case S_IFIFO: return "a named pipe"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        default: return "a special file"
        }
    }

    /// Every regular file of a stored result (as `/out/…`, `/work/…`) → `MODE sha256:…`, read through the same
    /// walk. `outputs.json` itself is left out.
    public static func listing(_ result: String, hash: (String) throws -> Digest) throws -> [String: String] {
        let fd = try HostTree.openDirectory(result)
        defer { close(fd) }
        var listing: [String: String] = [:]
        try HostTree.walk(fd) { relative, _, _, info in
            guard relative != "outputs.json", info.st_mode & S_IFMT == S_IFREG else { return true }
            listing["/" + relative] = "\(String(info.st_mode & 0o7777, radix: 8)) \(try hash(result + "/" + relative))"
            return true
        }
        return listing
    }
}
