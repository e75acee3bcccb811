import Foundation
import KilnLayer
import KilnTestSupport
import Testing

@testable import KilnSandbox

/// The sandbox's guarantees, each checked from inside a real bubblewrap sandbox whose root is the host's
/// static busybox (no Debian mirror needed).
@Suite struct SandboxTests {
    static let applets = [
        "sh", "ls", "cat", "echo", "id", "hostname", "touch", "sleep", "wget", "ip", "env", "mkdir", "grep", "wc",
        "nc", "readlink", "printf", "ln", "dd", "seq", "mkfifo", "mknod", "chmod", "stat", "head", "tr", "yes",
        "unshare", "rm", "mv",
    ]

    /// A root with /bin/busybox and its applets as symlinks, prepared like any environment root.
    static func busyboxRoot(_ tmp: TemporaryDirectory) throws -> EnvironmentRoot {
        var entries = [
            LayerEntry(path: "/bin", kind: .directory, mode: 0o755),
            LayerEntry(path: "/bin/busybox", kind: .file(.path("/bin/busybox")), mode: 0o755),
        ]
        entries += applets.map { LayerEntry(path: "/bin/\($0)", kind: .symlink(target: "busybox"), mode: 0o777) }
        return try EnvironmentRoot.prepare(key: "busybox", entries: entries, cache: tmp.path + "/environments")
    }

    struct Run {
        var lines: [String]
        var error: SandboxError?
        var out: String
        var log: String
    }

    /// Runs `script` with a source directory `app` holding `main.c`.
    func run(
        _ script: String, timeLimit: Int = 60, limits: SandboxLimits = .defaults, in tmp: TemporaryDirectory
    ) throws -> Run {
        let root = try Self.busyboxRoot(tmp)
        let id = UUID().uuidString.lowercased()
        try tmp.write("src-\(id)/main.c", "int main(void) { return 0; }\n")
        for directory in ["work-\(id)", "out-\(id)"] {
            try FileManager.default.createDirectory(
                atPath: tmp.path + "/" + directory, withIntermediateDirectories: true)
        }
        let spec = SandboxSpec(
            name: "probe", root: root.path, sources: ["app": tmp.path + "/src-\(id)"], work: tmp.path + "/work-\(id)",
            out: tmp.path + "/out-\(id)", command: ["/bin/sh", "-c", script],
            environment: ["EXTRA": "1", "PATH": "/x"],
            sourceDateEpoch: 1_700_000_000, timeLimit: timeLimit, log: tmp.path + "/\(id).log", limits: limits)
        let lines = Lines()
        var failure: SandboxError?
        do {
            try SandboxRunner.run(spec) { lines.append($0) }
        } catch let error as SandboxError {
            failure = error
        }
        return Run(lines: lines.all, error: failure, out: spec.out, log: spec.log)
    }

    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func append(_ line: String) { lock.withLock { lines.append(line) } }
        var all: [String] { lock.withLock { lines } }
    }

    @Test func fixedEnvironmentHostnameIdentityAndUmask() async throws {
        try await withTemporaryDirectory("kiln-sandbox-env") { tmp in
            let result = try run("env | grep -v '^PWD=\\|^SHLVL=\\|^_=' ; hostname; id -u; id -g; umask; pwd", in: tmp)
            #expect(result.error == nil, "\(String(describing: result.error))")
            let output = result.lines.map { String($0.dropFirst("probe ▸ ".count)) }
            #expect(result.lines.allSatisfy { $0.hasPrefix("probe ▸ ") })
            let variables = Set(output.filter { $0.contains("=") })
            #expect(
                variables == [
                    "HOME=/work", "PATH=\(SandboxSpec.path)", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TZ=UTC",
                    "SOURCE_DATE_EPOCH=1700000000", "HOSTNAME=kiln", "USER=root", "TMPDIR=/tmp", "EXTRA=1",
                ])
            #expect(Array(output.filter { !$0.contains("=") }) == ["kiln", "0", "0", "0022", "/work"])
            // The log keeps the output without the prefix.
            let log = try String(contentsOfFile: result.log, encoding: .utf8)
            #expect(log.contains("SOURCE_DATE_EPOCH=1700000000\n") && !log.contains("▸"))
        }
    }

    @Test func onlyTheRootSourcesWorkAndOutAreVisibleAndOnlyWorkOutAndTmpAreWritable() async throws {
        try await withTemporaryDirectory("kiln-sandbox-fs") { tmp in
            // A file in the host's /tmp must not show through the sandbox's /tmp.
            let marker = "/tmp/kiln-sandbox-marker-\(UUID().uuidString)"
            try Data().write(to: URL(fileURLWithPath: marker))
            defer { unlink(marker) }
            let result = try run(
                """
                ls /; ls /src; ls /src/app
                for p in / /bin /src/app /src/app/main.c /proc/1; do touch "$p/x" 2>/dev/null && echo "wrote $p"; done
                touch /bin/busybox 2>/dev/null && echo "wrote busybox"
                touch /work/w /out/o /tmp/t && echo writable
                ls /tmp | wc -l
                echo made > /out/result
                """, in: tmp)
            #expect(result.error == nil, "\(String(describing: result.error))")
            let output = result.lines.map { String($0.dropFirst("probe ▸ ".count)) }
            #expect(
                output == ["bin", "dev", "etc", "out", "proc", "src", "tmp", "work", "app", "main.c", "writable", "1"],
                "\(output)")
            #expect(try String(contentsOfFile: result.out + "/result", encoding: .utf8) == "made\n")
        }
    }

    @Test func noNetworkReachesTheHost() async throws {
        try await withTemporaryDirectory("kiln-sandbox-net") { tmp in
            try tmp.write("site/index.html", "reachable")
            try await withFileServer(root: tmp.path + "/site") { server in
                // The server answers from the host, so a failure below is the sandbox's doing.
                #expect(try Shell.run(["curl", "-sf", server.url + "/index.html"]).stdout == "reachable")
                let result = try run(
                    "ip -o link | wc -l; wget -q -T 3 -O - \(server.url)/index.html || echo unreachable", in: tmp)
                #expect(result.error == nil, "\(String(describing: result.error))")
                let output = result.lines.map { String($0.dropFirst("probe ▸ ".count)) }
                // Its own loopback only, and the host's server cannot be reached.
                #expect(output.first?.trimmingCharacters(in: .whitespaces) == "1")
                #expect(output.last == "unreachable")
                #expect(!output.contains("reachable"))
            }
        }
    }

    @Test func aFailingStepReportsItsLastLinesLogAndStatus() async throws {
        try await withTemporaryDirectory("kiln-sandbox-fail") { tmp in
            let result = try run(
                "i=0; while [ $i -lt 30 ]; do echo line $i; i=$((i+1)); done; echo oops >&2; exit 3", in: tmp)
            guard case .failed(let build, let status, let log, let tail) = result.error else {
                Issue.record("expected a failure, got \(String(describing: result.error))")
                return
            }
            #expect(build == "probe" && status == 3 && log == result.log)
            #expect(tail.count == SandboxRunner.tailLines && tail.last == "oops" && tail.first == "line 11")
            #expect(result.error!.description.contains("exit status 3") && result.error!.description.contains(log))
            #expect(result.lines.count == 31)
            #expect(try String(contentsOfFile: log, encoding: .utf8).hasPrefix("line 0\nline 1\n"))
        }
    }

    @Test func theWallClockLimitStopsTheWholeSandbox() async throws {
        try await withTemporaryDirectory("kiln-sandbox-time") { tmp in
            let started = Date()
            // A background child too: the limit must stop every process in the sandbox, not only the first.
            let result = try run("sleep 100 & echo started; sleep 100", timeLimit: 2, in: tmp)
            let elapsed = Date().timeIntervalSince(started)
            guard case .timedOut(_, let seconds, _, let tail) = result.error else {
                Issue.record("expected a time-out, got \(String(describing: result.error))")
                return
            }
            #expect(seconds == 2 && tail == ["started"])
            #expect(elapsed < 10, "took \(elapsed) s")
            // The kernel kills the rest of the sandbox's PID namespace once its init is gone; under the load of the
            // full parallel suite that takes longer than a moment, so wait for it (well below the sleeps' 100 s).
            var survivors = ""
            for _ in 0..<100 {
                survivors = try Shell.run(["sh", "-c", "pgrep -f '^sleep 100$' || true"]).stdout
                if survivors.isEmpty { break }
                usleep(200_000)
            }
            #expect(survivors.isEmpty, "sleep still running 20 s after the limit: \(survivors)")
        }
    }
}
