import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The bounds on one build step, so a hostile or runaway step cannot exhaust the machine it runs on.
/// Defaults suit a real compile (iguana's needs about 0.5 GB of disk, a few dozen processes); a recipe raises
/// them per build with `limits:`.
public struct SandboxLimits: Sendable, Hashable {
    /// Size of the private `/tmp` (a tmpfs: memory), in bytes.
    public var tmp: Int64
    /// What `/work` and `/out` may hold together on the host's disk, in bytes; also the largest single file
    /// (RLIMIT_FSIZE). The total is measured every `diskCheckInterval`, so a step writing faster than that can
    /// overshoot by what it writes in one interval before it is stopped.
    public var disk: Int64
    /// How much of the step's output the log keeps: the first half and the last half, with the size of what
    /// was cut between them.
    public var log: Int64
    /// Processes the step may run at once (RLIMIT_NPROC of the sandbox's host uid).
    public var processes: Int

    public static let defaults = SandboxLimits(
        tmp: 2 << 30, disk: 16 << 30, log: 8 << 20, processes: 1024)

    /// Longest output line passed on whole; a longer one is passed on in pieces of this size, so a step that
    /// never prints a newline costs bounded memory.
    public static let longestLine = 16 << 10
    public static let diskCheckInterval: TimeInterval = 0.5

    public init(tmp: Int64, disk: Int64, log: Int64, processes: Int) {
        self.tmp = tmp
        self.disk = disk
        self.log = log
        self.processes = processes
    }
}

/// Whom a build step runs as on the host. A step is never host root: when Kiln itself runs as root (as it
/// does on CI machines), bubblewrap is started as a dedicated unprivileged uid and gid, so uid 0 inside the
/// sandbox is that uid outside (`uid_map 0 N 1`), and everything the step does on the host it does with that
/// uid's rights. Run as an ordinary user, Kiln needs no such switch: uid 0 inside is that user.
public struct SandboxIdentity: Sendable, Hashable {
    /// The host uid and gid the sandbox runs as.
    public var uid: uid_t
    public var gid: gid_t

    /// `KILN_SANDBOX_UID` when set, else this: far above any uid Debian's tools hand out (users from 1000,
    /// subordinate ranges from 100000), so it owns nothing else on the machine.
    public static let defaultID: uid_t = 2_000_000_000

    /// The identity a step runs as, nil when this process is not root (the step then runs as this user).
    public static func current(environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> SandboxIdentity?
    {
        guard geteuid() == 0 else { return nil }
        var id = defaultID
        if let given = environment["KILN_SANDBOX_UID"], !given.isEmpty {
            guard let value = UInt32(given), value != 0, value != UInt32.max else {
                throw SandboxError.unavailable(
                    detail: "KILN_SANDBOX_UID=\(given) is not an unprivileged uid (a number other than 0)")
            }
            id = value
        }
        return SandboxIdentity(uid: id, gid: id)
    }

    /// The program line that runs `command` as this identity with `limits` applied: util-linux's `prlimit`
    /// (the limits) and `setpriv` (the uid switch, no supplementary groups), both exec in place, so the pid
    /// Kiln started stays the sandbox's parent.
    public static func wrap(_ command: [String], as identity: SandboxIdentity?, limits: SandboxLimits) -> [String] {
        var line = [
            "prlimit", "--nproc=\(limits.processes):\(limits.processes)", "--fsize=\(limits.disk):\(limits.disk)",
            "--core=0:0", "--",
        ]
        if let identity {
            line += [
                "setpriv", "--reuid=\(identity.uid)", "--regid=\(identity.gid)", "--clear-groups", "--inh-caps=-all",
                "--",
            ]
        }
        return line + command
    }
}
