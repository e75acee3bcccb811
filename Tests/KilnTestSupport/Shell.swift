import Foundation
import KilnProcess

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

/// Runs real tools for tests through Kiln's own spawning (Foundation's Process can miss a child's exit on Linux
/// and hang a test forever). Output goes through temp files so large outputs never block a pipe.
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

/// Kiln's own spawning (KilnProcess) as tests use it: files for the standard streams, the test's variables
/// merged over this process's environment, and an optional working directory.
public enum ChildProcess {
    public static func spawn(
        _ arguments: [String], environment: [String: String] = [:], directory: String? = nil,
        stdin: String = "/dev/null",
        stdout: String, stderr: String
    ) throws -> pid_t {
        let out = open(stdout, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let err = stderr == stdout ? out : open(stderr, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        defer {
            if out >= 0 { close(out) }
            if err >= 0 && err != out { close(err) }
        }
        guard out >= 0, err >= 0 else {
            throw SpawnFailure(program: arguments.first ?? "", detail: "cannot open \(stdout) or \(stderr)")
        }
        // env(1) with -C sets the working directory (posix_spawn has no portable chdir action).
        let command = (directory.map { ["/usr/bin/env", "-C", $0] } ?? []) + arguments
        return try KilnProcess.ChildProcess.spawn(
            command, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 }, stdin: stdin,
            stdout: out, stderr: err)
    }

    /// Waits for the child and returns its exit status (128 + signal when killed).
    public static func wait(_ pid: pid_t) -> Int32 { KilnProcess.ChildProcess.wait(pid) }
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
