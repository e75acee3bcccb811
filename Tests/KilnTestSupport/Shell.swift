import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The result of a finished command.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var succeeded: Bool { status == 0 }
}

public struct CommandFailed: Error, CustomStringConvertible {
    public var command: [String]
    public var result: CommandResult
    public var description: String {
        "`\(command.joined(separator: " "))` exited \(result.status)\nstdout: \(result.stdout)\nstderr: \(result.stderr)"
    }
}

/// Runs real tools for tests. Uses posix_spawn and waitpid directly: Foundation's Process can miss a child's
/// exit on Linux and hang a test forever. Output goes through temp files so large outputs never block a pipe.
public enum Shell {
    @discardableResult
    public static func run(
        _ arguments: [String], environment: [String: String] = [:], directory: String? = nil, check: Bool = true,
        stdin: String? = nil
    ) throws -> CommandResult {
        let tmp = FileManager.default.temporaryDirectory.path
        let id = UUID().uuidString
        let outPath = "\(tmp)/kiln-out-\(id)"
        let errPath = "\(tmp)/kiln-err-\(id)"
        let inPath = "\(tmp)/kiln-in-\(id)"
        try Data((stdin ?? "").utf8).write(to: URL(fileURLWithPath: inPath))
        defer {
            unlink(outPath)
            unlink(errPath)
            unlink(inPath)
        }
        let pid = try ChildProcess.spawn(
            arguments, environment: environment, directory: directory, stdin: inPath, stdout: outPath, stderr: errPath)
        let status = ChildProcess.wait(pid)
        let result = CommandResult(
            status: status, stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
        if check && !result.succeeded { throw CommandFailed(command: arguments, result: result) }
        return result
    }
}

/// posix_spawn with files for the standard streams, resolved through PATH.
public enum ChildProcess {
    public static func spawn(
        _ arguments: [String], environment: [String: String] = [:], directory: String? = nil,
        stdin: String = "/dev/null",
        stdout: String, stderr: String
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        // env(1) resolves the program through PATH and, with -C, sets the working directory.
        let argv0 = directory == nil ? ["/usr/bin/env"] + arguments : ["/usr/bin/env", "-C", directory!] + arguments
        let cArgs = argv0.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        // The test runner blocks and ignores signals on its threads; children must start with the defaults, or
        // a server would ignore the SIGTERM that stops it.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/usr/bin/env", &actions, &attributes, cArgs, cEnv)
        guard rc == 0 else {
            throw CommandFailed(
                command: arguments, result: CommandResult(status: -1, stdout: "", stderr: String(cString: strerror(rc)))
            )
        }
        return pid
    }

    /// Waits for the child and returns its exit status (128 + signal when killed).
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }
}

/// A fresh temporary directory with a lower-case name (podman derives image names from `oci:` paths and
/// refuses upper case), removed when the value is dropped by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String = "kiln") throws {
        path = FileManager.default.temporaryDirectory.path + "/\(label)-\(UUID().uuidString.lowercased())"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }

    /// Writes a file (creating parent directories) and returns its path.
    @discardableResult
    public func write(_ relativePath: String, _ content: String, mode: Int = 0o644) throws -> String {
        let full = path + "/" + relativePath
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(content.utf8).write(to: URL(fileURLWithPath: full))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: full)
        return full
    }
}
