import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A program that could not be started (not found, not executable, out of processes).
public struct SpawnFailure: Error, CustomStringConvertible {
    public var program: String
    public var detail: String
    public var description: String { "cannot start \(program): \(detail)" }

    public init(program: String, detail: String) {
        self.program = program
        self.detail = detail
    }
}

/// The one way Kiln starts a program: posix_spawn and waitpid, because Foundation's Process can miss a child's
/// exit on Linux and wait forever. Standard input is a file (default /dev/null), output goes to descriptors the
/// caller owns (a file or a socket, never a pipe nobody drains), and the child starts with default signal
/// handling: the caller's threads may block or ignore signals, and a child must still die of SIGTERM.
public enum ChildProcess {
    /// Starts `arguments[0]`: an absolute path, or a name resolved through the `PATH` of `environment` (or of
    /// this process when `environment` is nil, which also means the child inherits this process's environment).
    /// With `processGroup`, the child leads a new process group, so `kill(-pid, …)` reaches all it starts.
    /// `passing` lists descriptors (opened close-on-exec by the caller, so no other child inherits them) that
    /// this child gets as `passing[i] → firstPassedDescriptor(passing) + i`.
    public static func spawn(
        _ arguments: [String], environment: [String: String]? = nil, stdin: String = "/dev/null",
        stdout: Int32, stderr: Int32, processGroup: Bool = false, passing: [Int32] = []
    ) throws -> pid_t {
        precondition(!arguments.isEmpty, "a command line has a program")
        let inherited = ProcessInfo.processInfo.environment
        let program = try resolve(arguments[0], path: (environment ?? inherited)["PATH"] ?? "/usr/bin:/bin")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        // Numbered above every descriptor passed, so no dup2 overwrites one still to be passed; dup2 clears
        // close-on-exec on its copy.
        let first = firstPassedDescriptor(passing)
        for (index, fd) in passing.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, fd, first + Int32(index))
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
        if processGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = (environment ?? inherited).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, program, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw SpawnFailure(program: arguments[0], detail: String(cString: strerror(rc))) }
        return pid
    }

    /// The number the first of `passing` gets in the child (see `spawn`).
    public static func firstPassedDescriptor(_ passing: [Int32]) -> Int32 {
        max(passing.max() ?? 2, 2) + 1
    }

    /// Waits for the child; its exit status, or 128 + the signal that killed it (as a shell reports it).
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return exitStatus(status)
    }

    /// Waits at most until `deadline`; past it, kills the child's process group and the child and returns nil.
    public static func wait(_ pid: pid_t, until deadline: Date) -> Int32? {
        var status: Int32 = 0
        while true {
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid { return exitStatus(status) }
            if done < 0 && errno != EINTR { return exitStatus(status) }
            if Date() > deadline {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return nil
            }
            usleep(20_000)
        }
    }

    /// What a program run to completion by `capture` printed, and how it ended (nil: killed at the deadline).
    public struct Captured: Sendable {
        public var status: Int32?
        public var stdout: String
        public var stderr: String
    }

    /// Runs a program to completion with its output in temporary files in `directory` (never a pipe, which a
    /// chatty child could fill and block on), killed after `timeLimit` seconds. `input`, when given, is the
    /// child's standard input, through a file only this user can read (it may be a secret).
    public static func capture(
        _ arguments: [String], environment: [String: String]? = nil, input: Data? = nil,
        in directory: String = FileManager.default.temporaryDirectory.path, timeLimit: TimeInterval = 600
    ) throws -> Captured {
        let base = directory + "/.kiln-child-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var fds: [Int32] = []
        defer {
            fds.forEach { close($0) }
            unlink(base + ".out")
            unlink(base + ".err")
        }
        defer { unlink(base + ".in") }
        for path in [base + ".out", base + ".err"] + (input == nil ? [] : [base + ".in"]) {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw SpawnFailure(program: arguments[0], detail: "cannot write \(path)") }
            fds.append(fd)
        }
        if let input {
            let written = input.withUnsafeBytes { write(fds[2], $0.baseAddress, $0.count) }
            guard written == input.count else {
                throw SpawnFailure(program: arguments[0], detail: "cannot write its input to \(base).in")
            }
        }
        let pid = try spawn(
            arguments, environment: environment, stdin: input == nil ? "/dev/null" : base + ".in", stdout: fds[0],
            stderr: fds[1], processGroup: true)
        let status = wait(pid, until: Date().addingTimeInterval(timeLimit))
        let read = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        return Captured(status: status, stdout: read(base + ".out"), stderr: read(base + ".err"))
    }

    static func exitStatus(_ status: Int32) -> Int32 {
        status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// The executable a name stands for: the name itself when it holds a `/`, else the first match on `path`.
    static func resolve(_ name: String, path: String) throws -> String {
        if name.contains("/") { return name }
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = directory + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw SpawnFailure(program: name, detail: "not found on PATH (\(path))")
    }
}
