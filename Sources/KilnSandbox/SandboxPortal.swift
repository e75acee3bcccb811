import Foundation
import KilnStore

#if canImport(Glibc)
    import Glibc
#endif

/// Where the sandbox's uid finds the directories it binds, when Kiln runs as root and starts the step as
/// another uid. bubblewrap 0.8 binds by path, even for `--ro-bind-fd` (it mounts the path the descriptor
/// names and checks it is the same file), so the unprivileged uid must be able to walk to every bound
/// directory; the store and cache usually live under a home directory it cannot enter (`/root` is 0700).
///
/// So each bound directory is bind-mounted, by root, into a private mount namespace (`unshare --mount`) at
/// `/tmp/kiln-sandbox/.tmp-<pid>-<random>/<n>`, and bubblewrap, started in that namespace as the sandbox uid,
/// binds from there. The host never sees these mounts (they die with the namespace); what is left on the host
/// is a set of empty directories, removed after the step and, when Kiln was killed, by the next run.
struct SandboxPortal {
    static let parent = "/tmp/kiln-sandbox"

    let path: String
    let count: Int

    /// The directory for `count` binds, after removing those of runs whose process is gone.
    init(count: Int) throws {
        try Self.checkParent()
        StagedDirectory.removeStale(in: Self.parent, remove: Self.removeEmpty)
        path = "\(Self.parent)/.tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        self.count = count
        guard mkdir(path, 0o711) == 0 else { throw Self.failure(path) }
        for index in 0..<count {
            guard mkdir("\(path)/\(index)", 0o700) == 0 else { throw Self.failure("\(path)/\(index)") }
        }
    }

    /// The mount point standing for bind `index`.
    func mountPoint(_ index: Int) -> String { "\(path)/\(index)" }

    /// `command` started in a private mount namespace in which `hosts[i]` is bound at `mountPoint(i)`. Every
    /// program execs in place, so the pid Kiln starts ends up as bubblewrap.
    func wrap(_ command: [String], binding hosts: [String]) -> [String] {
        precondition(hosts.count == count)
        let script = """
            set -e
            portal=$1; count=$2; shift 2
            i=0
            while [ "$i" -lt "$count" ]; do mount -n --bind -- "$1" "$portal/$i"; shift; i=$((i + 1)); done
            exec "$@"
            """
        return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "kiln-portal", path]
            + [String(count)] + hosts + command
    }

    func remove() { Self.removeEmpty(path) }

    /// Removes a portal: empty mount points and the portal itself, with rmdir only, so a portal whose mounts
    /// were somehow still there would be left alone rather than emptied.
    static func removeEmpty(_ path: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for name in names { rmdir(path + "/" + name) }
        rmdir(path)
    }

    /// `/tmp/kiln-sandbox` is made by root, 0711; one that exists must be a real directory of root's that no
    /// one else can write (else another user could have planted what the sandbox binds).
    static func checkParent() throws {
        if mkdir(parent, 0o711) != 0 && errno != EEXIST { throw failure(parent) }
        var info = stat()
        guard lstat(parent, &info) == 0 else { throw failure(parent) }
        guard info.st_mode & S_IFMT == S_IFDIR, info.st_uid == 0, info.st_mode & 0o022 == 0 else {
            throw SandboxError.environment(
                path: parent,
                detail: "it is not a directory of root's that only root can write; remove it (Kiln makes it anew)")
        }
    }

    static func failure(_ path: String) -> SandboxError {
        SandboxError.environment(path: path, detail: String(cString: strerror(errno)))
    }
}
