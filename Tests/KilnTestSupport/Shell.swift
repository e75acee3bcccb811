import Foundation

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

/// Runs real tools for tests: output is captured through temp files so large outputs never block a pipe.
public enum Shell {
    @discardableResult
    public static func run(
        _ arguments: [String], environment: [String: String] = [:], directory: String? = nil, check: Bool = true,
        stdin: String? = nil
    ) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let tmp = FileManager.default.temporaryDirectory
        let outURL = tmp.appendingPathComponent("kiln-out-\(UUID().uuidString)")
        let errURL = tmp.appendingPathComponent("kiln-err-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try process.run()
        if let stdin {
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try input.fileHandleForWriting.close()
        }
        process.waitUntilExit()
        try out.close()
        try err.close()
        let result = CommandResult(
            status: process.terminationStatus,
            stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
        if check && !result.succeeded { throw CommandFailed(command: arguments, result: result) }
        return result
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
