import Foundation
import KilnProcess

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a `SandboxSpec` with bubblewrap: output streamed line by line with a `NAME ▸` prefix and kept whole
/// in the spec's log file, a wall-clock limit, and on failure the last lines, the log's path and the status.
public enum SandboxRunner {
    /// How many of the last output lines a failure repeats.
    public static let tailLines = 20

    /// Where bubblewrap is: `KILN_BWRAP`, else the first `bwrap` on PATH, else nil.
    public static func bubblewrap(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let given = environment["KILN_BWRAP"], !given.isEmpty { return given }
        let path = environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":").map(String.init) + ["/usr/bin"] {
            let candidate = directory + "/bwrap"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Runs the step to completion; returns normally only when it exited 0.
    public static func run(
        _ spec: SandboxSpec,
        output: (String) -> Void = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
    ) throws {
        guard let bwrap = bubblewrap() else { throw SandboxError.unavailable(detail: "`bwrap` was not found on PATH") }
        let arguments = [bwrap] + (try spec.bubblewrapArguments())
        let log = open(spec.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard log >= 0 else {
            throw SandboxError.environment(
                path: spec.log, detail: "cannot write the log: \(String(cString: strerror(errno)))")
        }
        defer { close(log) }
        var fds: [Int32] = [0, 0]
        // A socket pair rather than pipe(2): it is created close-on-exec atomically (Glibc's pipe2 is not visible
        // to Swift), so a process another thread spawns meanwhile cannot inherit the write end and hold it open.
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw SandboxError.unavailable(detail: "socketpair: \(String(cString: strerror(errno)))")
        }
        let pid: pid_t
        do {
            pid = try spawn(arguments, outputFD: fds[1])
        } catch {
            close(fds[0])
            close(fds[1])
            throw error
        }
        close(fds[1])
        defer { close(fds[0]) }

        var lines = LineSplitter()
        var tail: [String] = []
        func emit(_ line: String) {
            output("\(spec.name) ▸ \(line)")
            tail.append(line)
            if tail.count > tailLines { tail.removeFirst(tail.count - tailLines) }
        }
        let deadline = Date().addingTimeInterval(TimeInterval(spec.timeLimit))
        var timedOut = false
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 {
                timedOut = true
                break
            }
            var poller = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(remaining * 1000, 1000)) + 1)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { continue }
            let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            _ = buffer.withUnsafeBytes { Glibc.write(log, $0.baseAddress, n) }
            for line in lines.feed(buffer[0..<n]) { emit(line) }
        }
        if timedOut {
            // The step's process group, then bubblewrap itself: the sandbox's pid 1 dies with its parent
            // (--die-with-parent), and with it every process of the sandbox's pid namespace.
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
        }
        if let rest = lines.finish() { emit(rest) }
        let exit = ChildProcess.wait(pid)
        fsync(log)
        if timedOut {
            throw SandboxError.timedOut(build: spec.name, seconds: spec.timeLimit, log: spec.log, tail: tail)
        }
        guard exit == 0 else {
            // bubblewrap reports its own setup failures (no user namespaces, a missing mount source) as
            // `bwrap: …` before the step ever starts.
            if let first = tail.first, first.hasPrefix("bwrap: "), tail.count == 1 {
                throw SandboxError.unavailable(detail: first)
            }
            throw SandboxError.failed(build: spec.name, status: exit, log: spec.log, tail: tail)
        }
    }

    /// The step's bubblewrap in a process group of its own, stdin from /dev/null and stdout+stderr into `outputFD`.
    /// bubblewrap starts from a cleared environment (--clearenv); it needs nothing of Kiln's.
    static func spawn(_ arguments: [String], outputFD: Int32, environment: [String: String] = ["PATH": "/usr/bin:/bin"])
        throws -> pid_t
    {
        do {
            return try ChildProcess.spawn(
                arguments, environment: environment, stdout: outputFD, stderr: outputFD, processGroup: true)
        } catch let failure as SpawnFailure {
            throw SandboxError.unavailable(detail: failure.description)
        }
    }
}

/// Splits a byte stream into lines (invalid UTF-8 is replaced, never fatal).
struct LineSplitter {
    private var pending: [UInt8] = []

    mutating func feed(_ bytes: ArraySlice<UInt8>) -> [String] {
        var lines: [String] = []
        for byte in bytes {
            if byte == 0x0A {
                lines.append(String(decoding: pending, as: UTF8.self))
                pending.removeAll(keepingCapacity: true)
            } else {
                pending.append(byte)
            }
        }
        return lines
    }

    mutating func finish() -> String? {
        defer { pending.removeAll() }
        return pending.isEmpty ? nil : String(decoding: pending, as: UTF8.self)
    }
}
