import Foundation

/// One hermetic build step: what it sees, what it runs, how long it may take.
///
/// The step runs under bubblewrap (`bwrap`, Debian's `bubblewrap`) in new user, mount, network, pid, ipc, uts
/// and (where the kernel allows) cgroup namespaces, with every capability dropped. bubblewrap rather than
/// Kiln's own `clone`/`unshare` code: it is small, setuid-free on Debian, audited, and already solves the
/// fiddly parts (pivot_root onto a fresh tmpfs, uid maps for root and for ordinary users, /proc and /dev,
/// killing the whole pid namespace when its parent dies) that would otherwise be a few hundred lines of
/// security-sensitive C-in-Swift here.
///
/// What the step sees, and nothing else of the host:
/// - the environment root's top-level directories read-only at `/` (the root itself is a read-only tmpfs);
/// - each source read-only at `/src/NAME`;
/// - `/work` (a scratch directory, writable, the working directory and `HOME`) and `/out` (writable);
/// - a private `/tmp`, `/proc` of its own pid namespace, and a minimal `/dev`;
/// - no network at all (only its own loopback), hostname `kiln`, uid and gid 0 inside, mapped to an
///   unprivileged host uid (see `SandboxIdentity`), and no further user namespaces;
/// - bounded: see `SandboxLimits`;
/// - the environment below and umask 022.
public struct SandboxSpec: Sendable {
    /// Names the build in the log prefix (`NAME ▸`) and errors.
    public var name: String
    /// The environment root on the host (made by `EnvironmentRoot`).
    public var root: String
    /// Source name → host directory, mounted read-only at `/src/NAME`.
    public var sources: [String: String]
    /// Host directory mounted at `/work`.
    public var work: String
    /// Host directory mounted at `/out`.
    public var out: String
    /// The program and its arguments, resolved inside the sandbox (`/bin/sh -c …` for a script).
    public var command: [String]
    /// Extra variables for the step; the fixed ones below win.
    public var environment: [String: String]
    public var sourceDateEpoch: Int
    /// Wall-clock limit in seconds.
    public var timeLimit: Int
    /// Where the step's full output is kept.
    public var log: String
    public var limits: SandboxLimits

    public init(
        name: String, root: String, sources: [String: String] = [:], work: String, out: String,
        command: [String], environment: [String: String] = [:], sourceDateEpoch: Int = 0, timeLimit: Int = 3600,
        log: String, limits: SandboxLimits = .defaults
    ) {
        self.limits = limits
        self.name = name
        self.root = root
        self.sources = sources
        self.work = work
        self.out = out
        self.command = command
        self.environment = environment
        self.sourceDateEpoch = sourceDateEpoch
        self.timeLimit = timeLimit
        self.log = log
    }

    public static let hostname = "kiln"
    public static let path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"

    /// The variables every step gets; a build's own `environment` cannot change these.
    public var fixedEnvironment: [String: String] {
        [
            "HOME": "/work", "PATH": Self.path, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC",
            "SOURCE_DATE_EPOCH": String(sourceDateEpoch), "HOSTNAME": Self.hostname, "USER": "root",
            "TMPDIR": "/tmp",
        ]
    }

    /// A host directory bound into the sandbox (see `SandboxRunner` for how it reaches bubblewrap).
    public struct Bind: Sendable, Hashable {
        public var host: String
        public var inside: String
        public var writable: Bool
    }

    /// What the sandbox's filesystem is made of: top-level symlinks of the root, and the host directories bound.
    public struct Layout: Sendable {
        public var symlinks: [(link: String, target: String)]
        public var binds: [Bind]
    }

    public func layout() throws -> Layout {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: root).sorted()
        } catch {
            throw SandboxError.environment(path: root, detail: "cannot list the environment root: \(error)")
        }
        let reserved: Set = ["proc", "dev", "tmp", "src", "work", "out"]
        var layout = Layout(symlinks: [], binds: [])
        for name in names where !reserved.contains(name) {
            let path = root + "/" + name
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) {
                layout.symlinks.append(("/" + name, target))
            } else {
                layout.binds.append(Bind(host: path, inside: "/" + name, writable: false))
            }
        }
        for (name, directory) in sources.sorted(by: { $0.key < $1.key }) {
            layout.binds.append(Bind(host: directory, inside: "/src/" + name, writable: false))
        }
        layout.binds.append(Bind(host: work, inside: "/work", writable: true))
        layout.binds.append(Bind(host: out, inside: "/out", writable: true))
        return layout
    }

    /// How bubblewrap finds the host side of each bind: a descriptor Kiln opened (`--ro-bind-fd`), or a path
    /// (`--ro-bind`).
    public enum BindSource: Sendable, Hashable {
        case descriptor(Int32)
        case path(String)
    }

    /// The bubblewrap arguments for this step (without `bwrap` itself), `sources[i]` standing for
    /// `layout().binds[i]`.
    public func bubblewrapArguments(binding sources: [BindSource]) throws -> [String] {
        var args = [
            "--unshare-user", "--uid", "0", "--gid", "0", "--disable-userns", "--unshare-ipc", "--unshare-pid",
            "--unshare-net", "--unshare-uts", "--unshare-cgroup-try", "--hostname", Self.hostname, "--cap-drop",
            "ALL", "--die-with-parent", "--new-session", "--clearenv",
        ]
        let layout = try layout()
        for (link, target) in layout.symlinks {
            args += ["--symlink", target, link]
        }
        args += ["--proc", "/proc", "--dev", "/dev", "--size", String(limits.tmp), "--tmpfs", "/tmp", "--dir", "/src"]
        precondition(sources.count == layout.binds.count, "one source per bind")
        for (bind, source) in zip(layout.binds, sources) {
            switch source {
            case .descriptor(let fd):
                args += [bind.writable ? "--bind-fd" : "--ro-bind-fd", String(fd), bind.inside]
            case .path(let path):
                args += [bind.writable ? "--bind" : "--ro-bind", path, bind.inside]
            }
        }
        args += ["--remount-ro", "/", "--chdir", "/work"]
        let variables = environment.merging(fixedEnvironment) { _, fixed in fixed }
        for (key, value) in variables.sorted(by: { $0.key < $1.key }) {
            args += ["--setenv", key, value]
        }
        // bubblewrap 0.8 has no --umask: a shell sets it and then becomes the step, so the mode of every file a
        // step creates does not depend on the caller's umask.
        args += ["--", "/bin/sh", "-c", "umask 022 && exec \"$@\"", "kiln-step"] + command
        return args
    }
}
