import Foundation
import Testing

@testable import KilnProcess

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct ChildProcessTests {
    func output(_ body: (Int32) throws -> Void) throws -> String {
        let path = FileManager.default.temporaryDirectory.path + "/kiln-process-\(UUID().uuidString)"
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer {
            close(fd)
            unlink(path)
        }
        try body(fd)
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    @Test func runsThroughPathWithTheGivenEnvironmentAndStatus() throws {
        var status: Int32 = -1
        let text = try output { fd in
            let pid = try ChildProcess.spawn(
                ["sh", "-c", "echo \"$GREETING\"; echo err >&2; exit 3"],
                environment: ["PATH": "/usr/bin:/bin", "GREETING": "hello"], stdout: fd, stderr: fd)
            status = ChildProcess.wait(pid)
        }
        #expect(status == 3)
        #expect(text == "hello\nerr\n")
    }

    @Test func anUnknownProgramIsNamed() {
        #expect {
            _ = try ChildProcess.spawn(["kiln-no-such-tool"], environment: ["PATH": "/usr/bin"], stdout: 1, stderr: 2)
        } throws: { error in
            "\(error)".contains("kiln-no-such-tool") && "\(error)".contains("not found on PATH")
        }
    }

    /// The caller's blocked signals are not inherited: SIGTERM still ends the child.
    @Test func childrenStartWithDefaultSignalHandling() throws {
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGTERM)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let pid = try ChildProcess.spawn(["sleep", "30"], stdout: 1, stderr: 2)
        usleep(100_000)
        kill(pid, SIGTERM)
        #expect(ChildProcess.wait(pid) == 128 + SIGTERM)
    }

    /// Past the deadline the whole process group is killed, grandchildren included, and nil says so.
    @Test func aDeadlineKillsTheProcessGroup() throws {
        let started = Date()
        let text = try output { fd in
            let pid = try ChildProcess.spawn(
                ["sh", "-c", "sleep 30 & echo $!; wait"], stdout: fd, stderr: fd, processGroup: true)
            #expect(ChildProcess.wait(pid, until: Date().addingTimeInterval(0.5)) == nil)
        }
        #expect(Date().timeIntervalSince(started) < 10)
        let grandchild = try #require(pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        usleep(200_000)
        // Dead, or a zombie not yet reaped by whoever inherited it.
        let stat = (try? String(contentsOfFile: "/proc/\(grandchild)/stat", encoding: .utf8)) ?? ""
        let state = stat.split(separator: ")").last?.split(separator: " ").first
        #expect(stat.isEmpty || state == "Z", "the sleep the shell started outlived the deadline: \(stat)")
    }
}
