import Foundation
import KilnLayer
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnSandbox

/// A hostile build step, tried every way it could reach the host: each case is refused or harmless. The step
/// runs in a real bubblewrap sandbox over the host's static busybox; outputs are collected as `Pipeline.compile`
/// collects them (`StepOutputs`).
@Suite struct SandboxEscapeTests {
    let probe = SandboxTests()

    /// A staging tree as `Pipeline.compile` makes it (`work`, `out`, `result`), the step run in it.
    struct Staged {
        var staging: String
        var run: SandboxTests.Run
        var result: String { staging + "/result" }
    }

    func stage(_ script: String, limits: SandboxLimits = .defaults, timeLimit: Int = 60, in tmp: TemporaryDirectory)
        throws -> Staged
    {
        let root = try SandboxTests.busyboxRoot(tmp)
        let staging = tmp.path + "/staging-\(UUID().uuidString.lowercased())"
        for part in ["work", "out", "result"] {
            try FileManager.default.createDirectory(atPath: staging + "/" + part, withIntermediateDirectories: true)
        }
        try tmp.write("app/main.c", "int main(void) { return 0; }\n")
        let spec = SandboxSpec(
            name: "hostile", root: root.path, sources: ["app": tmp.path + "/app"], work: staging + "/work",
            out: staging + "/out", command: ["/bin/sh", "-c", script], timeLimit: timeLimit,
            log: staging + ".log", limits: limits)
        let lines = SandboxTests.Lines()
        var failure: SandboxError?
        do {
            try SandboxRunner.run(spec) { lines.append($0) }
        } catch let error as SandboxError {
            failure = error
        }
        return Staged(
            staging: staging, run: SandboxTests.Run(lines: lines.all, error: failure, out: spec.out, log: spec.log))
    }

    func output(_ staged: Staged) -> [String] {
        staged.run.lines.map { String($0.dropFirst("hostile ▸ ".count)) }
    }

    /// A host directory with a file the step must not move or read.
    func victim(_ tmp: TemporaryDirectory) throws -> String {
        let directory = tmp.path + "/host-\(UUID().uuidString.lowercased())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "host secret\n".write(toFile: directory + "/secret", atomically: true, encoding: .utf8)
        chmod(directory + "/secret", 0o600)
        return directory
    }

    @Test func anOutputThroughASymlinkIsRefusedAndTheHostFileStays() async throws {
        try await withTemporaryDirectory("kiln-escape-link") { tmp in
            let host = try victim(tmp)
            let staged = try stage("ln -s \(host) /out/linkdir; ln -s /etc /work/etcdir", in: tmp)
            #expect(staged.run.error == nil, "\(String(describing: staged.run.error))")
            for output in ["/out/linkdir/secret", "/work/etcdir/shadow"] {
                #expect(throws: SandboxError.self) {
                    try StepOutputs.collect([output], build: "hostile", staging: staged.staging, into: staged.result)
                }
                do {
                    try StepOutputs.collect([output], build: "hostile", staging: staged.staging, into: staged.result)
                } catch let error as SandboxError {
                    guard case .outputThroughLink(_, let path, let through, let symlink) = error else {
                        Issue.record("unexpected \(error)")
                        continue
                    }
                    #expect(
                        path == output && symlink
                            && through == (output.hasPrefix("/out") ? "/out/linkdir" : "/work/etcdir")
                    )
                    #expect(error.description.contains("never follows"))
                }
            }
            // Nothing moved: the host's file is where it was, and the result holds nothing of it.
            #expect(try String(contentsOfFile: host + "/secret", encoding: .utf8) == "host secret\n")
            #expect(!FileManager.default.fileExists(atPath: staged.result + "/out/linkdir/secret"))
        }
    }

    @Test func aSymlinkThatIsTheOutputStaysASymlinkAndFromPathsThroughItAreRefused() async throws {
        try await withTemporaryDirectory("kiln-escape-output-link") { tmp in
            let staged = try stage("ln -s /etc /out/etcdir; echo built > /out/tool", in: tmp)
            #expect(staged.run.error == nil)
            try StepOutputs.collect(
                ["/out/etcdir", "/out/tool"], build: "hostile", staging: staged.staging, into: staged.result)
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: staged.result + "/out/etcdir") == "/etc")
            // `add: {from: hostile, src: etcdir/shadow}`: refused, the host's /etc is never reached.
            #expect(throws: SandboxError.self) {
                try StepOutputs.resolve("/out/etcdir/shadow", in: staged.result, build: "hostile")
            }
            #expect(
                try StepOutputs.resolve("/out/etcdir", in: staged.result, build: "hostile") == staged.result
                    + "/out/etcdir"
            )
            #expect(
                try StepOutputs.resolve("/out/tool", in: staged.result, build: "hostile") == staged.result + "/out/tool"
            )
            // The listing reads through the same walk: the symlinked /etc is not listed.
            let listing = try StepOutputs.listing(staged.result) { _ in Digest.sha256("") }
            #expect(Array(listing.keys) == ["/out/tool"])
        }
    }

    @Test func theStepIsNotHostRoot() async throws {
        try await withTemporaryDirectory("kiln-escape-uid") { tmp in
            let staged = try stage(
                "id -u; echo x > /out/made; unshare -U true 2>/dev/null && echo nested; true", in: tmp)
            #expect(staged.run.error == nil, "\(String(describing: staged.run.error))")
            let lines = output(staged)
            #expect(lines.first == "0")
            #expect(!lines.contains("nested"), "a step must not make user namespaces of its own: \(lines)")
            var info = stat()
            #expect(lstat(staged.staging + "/out/made", &info) == 0)
            if geteuid() == 0 {
                // Root outside: uid 0 inside is the dedicated unprivileged uid, and so is the file it wrote.
                #expect(info.st_uid == SandboxIdentity.defaultID && info.st_gid == SandboxIdentity.defaultID)
            } else {
                #expect(info.st_uid == geteuid())
            }
            // Collected, it belongs to the store's owner again.
            try StepOutputs.collect(["/out/made"], build: "hostile", staging: staged.staging, into: staged.result)
            #expect(lstat(staged.result + "/out/made", &info) == 0 && info.st_uid == geteuid())
        }
    }

    @Test func hardlinksOutDevicesSetuidAndPipesAreRefusedOrHarmless() async throws {
        try await withTemporaryDirectory("kiln-escape-kinds") { tmp in
            let staged = try stage(
                """
                ln /bin/busybox /out/bb 2>/dev/null && echo linked-root
                ln /src/app/main.c /out/main 2>/dev/null && echo linked-source
                mknod /out/null c 1 3 2>/dev/null && echo device
                cp() { cat "$1" > "$2"; }; echo tool > /out/tool; chmod 4755 /out/tool; mkdir /out/d; chmod 2775 /out/d
                mkfifo /work/fifo && echo fifo
                """, in: tmp)
            #expect(staged.run.error == nil, "\(String(describing: staged.run.error))")
            #expect(output(staged) == ["fifo"])
            try StepOutputs.collect(["/out"], build: "hostile", staging: staged.staging, into: staged.result)
            var info = stat()
            #expect(lstat(staged.result + "/out/tool", &info) == 0 && info.st_mode & 0o7777 == 0o755)
            #expect(lstat(staged.result + "/out/d", &info) == 0 && info.st_mode & 0o7000 == 0)
            do {
                try StepOutputs.collect(["/work/fifo"], build: "hostile", staging: staged.staging, into: staged.result)
                Issue.record("a named pipe was collected")
            } catch let error as SandboxError {
                guard case .outputKind(_, let path, let kind) = error else {
                    Issue.record("unexpected \(error)")
                    return
                }
                #expect(path == "/work/fifo" && kind == "a named pipe")
            }
        }
    }

    @Test func procAndSysShowNothingOfTheHost() async throws {
        try await withTemporaryDirectory("kiln-escape-proc") { tmp in
            let staged = try stage(
                "ls /proc | grep -c '^[0-9]'; ls /sys 2>&1 | head -1; cat /proc/1/cmdline | tr '\\0' ' '", in: tmp)
            #expect(staged.run.error == nil)
            let lines = output(staged)
            // Its own pid namespace: bubblewrap's init, the shell and the pipeline's few processes, nothing else.
            #expect((Int(lines.first ?? "") ?? 99) < 10, "\(lines)")
            #expect(lines.dropFirst().first?.contains("No such file") == true, "\(lines)")
            // pid 1 is bubblewrap's init; its command line names descriptors, never a host path.
            #expect(lines.last?.contains("bwrap") == true && lines.last?.contains(tmp.path) == false, "\(lines)")
        }
    }

    @Test func aForkBombStopsAtTheProcessLimit() async throws {
        guard geteuid() == 0 else {
            print("skipped: the process limit counts every process of the sandbox's uid; run as root to test it")
            return
        }
        try await withTemporaryDirectory("kiln-escape-fork") { tmp in
            var limits = SandboxLimits.defaults
            limits.processes = 48
            // The bomb runs in a subshell until a fork fails; the step then counts its processes with a glob (a
            // shell builtin: no fork needed at the limit).
            let staged = try stage(
                "(while true; do sleep 10 & done) 2>&1; set -- /proc/[0-9]*; echo count $#", limits: limits, in: tmp)
            #expect(staged.run.error == nil, "\(String(describing: staged.run.error))")
            let lines = output(staged)
            #expect(lines.contains { $0.contains("can't fork") }, "\(lines)")
            let count = lines.last.flatMap { $0.hasPrefix("count ") ? Int($0.dropFirst(6)) : nil }
            #expect(count.map { $0 <= 48 && $0 > 10 } == true, "\(lines)")
        }
    }

    @Test func tmpIsBoundedAndAFullDiskStopsTheStep() async throws {
        try await withTemporaryDirectory("kiln-escape-disk") { tmp in
            var limits = SandboxLimits.defaults
            limits.tmp = 8 << 20
            limits.disk = 24 << 20
            let filledTmp = try stage(
                "dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1 | head -1; echo done", limits: limits, in: tmp)
            #expect(filledTmp.run.error == nil)
            #expect(output(filledTmp).first?.contains("No space left") == true, "\(output(filledTmp))")
            // Many files, each below the size limit: the watch on /work and /out stops it.
            let started = Date()
            let filled = try stage(
                "i=0; while true; do dd if=/dev/zero of=/work/f$i bs=1M count=4 2>/dev/null; i=$((i+1)); sleep 0.05; done",
                limits: limits, timeLimit: 120, in: tmp)
            guard case .diskLimit(_, let limit, _) = filled.run.error else {
                Issue.record("expected the disk limit, got \(String(describing: filled.run.error))")
                return
            }
            #expect(limit == 24 << 20 && Date().timeIntervalSince(started) < 60)
            #expect(HostTree.diskUsage([filled.staging + "/work"], limit: .max) < 64 << 20)
            // One file larger than the limit: stopped by the file-size limit.
            let big = try stage(
                "dd if=/dev/zero of=/out/big bs=1M count=64 2>/dev/null; echo status $?", limits: limits, in: tmp)
            var info = stat()
            #expect(lstat(big.staging + "/out/big", &info) == 0 && info.st_size <= 24 << 20)
        }
    }

    @Test func endlessOutputIsBoundedInTheLogAndInMemory() async throws {
        try await withTemporaryDirectory("kiln-escape-log") { tmp in
            var limits = SandboxLimits.defaults
            limits.log = 1 << 20
            // 32 MB without a newline, then a last line.
            let staged = try stage(
                "yes | tr -d '\\n' | head -c 33554432; echo; echo the-end", limits: limits, in: tmp)
            #expect(staged.run.error == nil)
            let lines = staged.run.lines
            #expect(lines.allSatisfy { $0.utf8.count <= SandboxLimits.longestLine + 64 })
            #expect(lines.contains { $0.contains("more output than the log keeps") })
            let size = (try FileManager.default.attributesOfItem(atPath: staged.run.log)[.size] as? Int) ?? 0
            #expect(size <= (1 << 20) + 200, "log is \(size) bytes")
            let log = try String(contentsOfFile: staged.run.log, encoding: .utf8)
            #expect(log.contains("bytes of output cut here") && log.hasSuffix("the-end\n"))
        }
    }

    @Test func staleStagingOfAKilledBuildIsRemovedWhateverTheStepLeft() async throws {
        try await withTemporaryDirectory("kiln-escape-stale") { tmp in
            let staged = try stage("mkdir -p /work/a/b; echo x > /work/a/b/f; chmod 000 /work/a/b /work/a", in: tmp)
            #expect(staged.run.error == nil)
            // As a build killed mid-step leaves it: `.tmp-<dead pid>-…`.
            let builds = tmp.path + "/builds"
            try FileManager.default.createDirectory(atPath: builds, withIntermediateDirectories: true)
            let stale = builds + "/.tmp-2147483646-1"
            #expect(rename(staged.staging, stale) == 0)
            let host = try victim(tmp)
            #expect(symlink(host, stale + "/out/escape") == 0)
            #expect(StagedDirectory.removeStale(in: builds, remove: HostTree.remove) == [stale])
            #expect(!FileManager.default.fileExists(atPath: stale))
            // The symlink was removed, not followed.
            #expect(FileManager.default.fileExists(atPath: host + "/secret"))
        }
    }
}
