import Foundation
import KilnProcess

#if canImport(Glibc)
    import Glibc
#endif

/// Fetches one commit of a git repository where there is network, for sources that are not supplied as an
/// archive. Only that commit is fetched (`--depth 1`, by id: a moved branch or tag cannot change what is
/// fetched), and the tree git reports for it is what the extracted archive is checked against.
public enum GitFetch {
    /// Writes `git archive` of `commit` of `url` to `archive` and returns the commit's tree id. `scratch` (which
    /// must not exist) holds the temporary repository and is removed. Each git command has `timeLimit` seconds.
    public static func archive(url: String, commit: String, to archive: String, scratch: String, timeLimit: Int = 600)
        throws -> String
    {
        guard mkdir(scratch, 0o700) == 0 else {
            throw SandboxError.source(path: scratch, detail: String(cString: strerror(errno)))
        }
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let repository = scratch + "/repository"
        try git(["init", "-q", "--bare", repository], in: scratch, scratch: scratch, timeLimit: timeLimit)
        try git(["fetch", "-q", "--depth", "1", url, commit], in: repository, scratch: scratch, timeLimit: timeLimit)
        let tree = try git(
            ["rev-parse", "--verify", commit + "^{tree}"], in: repository, scratch: scratch, timeLimit: timeLimit
        )
        .trimmingCharacters(in: .whitespacesAndNewlines)
        guard GitTree.isObjectID(tree) else {
            throw SandboxError.source(path: url, detail: "git reported '\(tree)' as the tree of \(commit)")
        }
        try git(
            ["archive", "--format=tar", "-o", archive, commit], in: repository, scratch: scratch, timeLimit: timeLimit)
        return tree
    }

    /// Runs git (from PATH) with a clean environment (no prompts, no system or user config) and a wall-clock
    /// limit; returns its output, or throws with its last lines.
    @discardableResult
    static func git(_ arguments: [String], in directory: String, scratch: String, timeLimit: Int) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        guard
            let program = path.split(separator: ":").map({ String($0) + "/git" }).first(where: { access($0, X_OK) == 0 }
            )
        else {
            throw SandboxError.source(path: "git", detail: "git is not installed; supply the source with --sources")
        }
        let log = scratch + "/git-\(UInt32.random(in: 0...UInt32.max)).log"
        let fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SandboxError.source(path: log, detail: String(cString: strerror(errno))) }
        defer { unlink(log) }
        let pid: pid_t
        do {
            pid = try SandboxRunner.spawn(
                [program, "-C", directory] + arguments, outputFD: fd,
                environment: [
                    "PATH": path, "HOME": scratch, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_CONFIG_GLOBAL": "/dev/null", "LC_ALL": "C",
                ])
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        guard let status = ChildProcess.wait(pid, until: Date().addingTimeInterval(TimeInterval(timeLimit))) else {
            throw SandboxError.source(
                path: arguments.joined(separator: " "), detail: "git did not finish within \(timeLimit) s")
        }
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let tail = output.split(separator: "\n").suffix(5).joined(separator: "\n")
            throw SandboxError.source(path: "git " + arguments.joined(separator: " "), detail: "failed: \(tail)")
        }
        return output
    }
}
