import Foundation
import KilnProcess
import Logging

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

    /// Runs the step to completion; returns normally only when it exited 0. `logger` hears how the sandbox is
    /// made (the bubblewrap command line) and how the step ended.
    public static func run(
        _ spec: SandboxSpec, logger: Logger = Logger(label: "kiln.sandbox"),
        output: (String) -> Void = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
    ) throws {
        guard let bwrap = bubblewrap() else { throw SandboxError.unavailable(detail: "`bwrap` was not found on PATH") }
        let identity = try SandboxIdentity.current()
        if let identity {
            // The step writes /work and /out as its own uid; the environment root, read-only to it, looks
            // root-owned inside as on a real system (and its 0600 files stay readable to the step's root).
            for directory in [spec.work, spec.out] {
                guard lchown(directory, identity.uid, identity.gid) == 0 else {
                    throw SandboxError.environment(path: directory, detail: String(cString: strerror(errno)))
                }
            }
            try adopt(spec.root, by: identity)
        }
        let layout = try spec.layout()
        // Run as root, the binds reach the sandbox's uid through a portal (see `SandboxPortal`); run as an
        // ordinary user, as descriptors Kiln opened, so no path is resolved twice.
        var descriptors: [Int32] = []
        defer { descriptors.forEach { close($0) } }
        let portal = try identity.map { _ in try SandboxPortal(count: layout.binds.count) }
        defer { portal?.remove() }
        let sources: [SandboxSpec.BindSource]
        if let portal {
            sources = layout.binds.indices.map { .path(portal.mountPoint($0)) }
        } else {
            for bind in layout.binds { descriptors.append(try HostTree.openForBinding(bind.host)) }
            let first = ChildProcess.firstPassedDescriptor(descriptors)
            sources = descriptors.indices.map { .descriptor(first + Int32($0)) }
        }
        var arguments = SandboxIdentity.wrap(
            [bwrap] + (try spec.bubblewrapArguments(binding: sources)), as: identity, limits: spec.limits)
        if let portal {
            arguments = portal.wrap(arguments, binding: layout.binds.map(\.host))
        }
        let how = identity == nil ? "as this user" : "as an unprivileged uid through a portal"
        logger.debug("sandbox \(spec.name): \(how): \(arguments.joined(separator: " "))")
        var log = try BoundedLog(path: spec.log, limit: spec.limits.log)
        var fds: [Int32] = [0, 0]
        // A socket pair rather than pipe(2): it is created close-on-exec atomically (Glibc's pipe2 is not visible
        // to Swift), so a process another thread spawns meanwhile cannot inherit the write end and hold it open.
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw SandboxError.unavailable(detail: "socketpair: \(String(cString: strerror(errno)))")
        }
        let pid: pid_t
        do {
            pid = try spawn(arguments, outputFD: fds[1], passing: descriptors)
        } catch {
            close(fds[0])
            close(fds[1])
            throw error
        }
        close(fds[1])
        defer { close(fds[0]) }
        descriptors.forEach { close($0) }
        descriptors = []

        var lines = LineSplitter(longest: SandboxLimits.longestLine)
        var tail: [String] = []
        var shown = true
        func emit(_ line: String) {
            if shown && !log.cutting {
                output("\(spec.name) ▸ \(line)")
            } else if shown {
                shown = false
                output(
                    "\(spec.name) ▸ [kiln: more output than the log keeps (\(ByteCount.text(spec.limits.log))); "
                        + "the rest is not shown, the log keeps its last part]")
            }
            tail.append(line)
            if tail.count > tailLines { tail.removeFirst(tail.count - tailLines) }
        }
        let deadline = Date().addingTimeInterval(TimeInterval(spec.timeLimit))
        var stop: Stop?
        var nextDiskCheck = Date().addingTimeInterval(SandboxLimits.diskCheckInterval)
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let now = Date()
            if deadline <= now {
                stop = .time
                break
            }
            if nextDiskCheck <= now {
                if HostTree.diskUsage([spec.work, spec.out], limit: spec.limits.disk) > spec.limits.disk {
                    stop = .disk
                    break
                }
                nextDiskCheck = now.addingTimeInterval(SandboxLimits.diskCheckInterval)
            }
            let wait = min(deadline.timeIntervalSince(now), nextDiskCheck.timeIntervalSince(now))
            var poller = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(wait, 0) * 1000) + 1)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { continue }
            let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            log.append(buffer[0..<n])
            for line in lines.feed(buffer[0..<n]) { emit(line) }
        }
        if stop != nil {
            // The step's process group, then bubblewrap itself: the sandbox's pid 1 dies with its parent
            // (--die-with-parent), and with it every process of the sandbox's pid namespace.
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
        }
        if let rest = lines.finish() { emit(rest) }
        let exit = ChildProcess.wait(pid)
        log.close()
        logger.debug("sandbox \(spec.name): exit \(exit)\(stop.map { ", stopped at its \($0) limit" } ?? "")")
        switch stop {
        case .time?:
            throw SandboxError.timedOut(build: spec.name, seconds: spec.timeLimit, log: spec.log, tail: tail)
        case .disk?:
            throw SandboxError.diskLimit(build: spec.name, limit: spec.limits.disk, log: spec.log)
        case nil:
            break
        }
        guard exit == 0 else {
            // bubblewrap reports its own setup failures (no user namespaces, a missing mount source) as
            // `bwrap: …` before the step ever starts, and so do the tools that start it.
            let setup = ["bwrap: ", "mount: ", "unshare: ", "setpriv: ", "prlimit: "]
            if let first = tail.first, setup.contains(where: first.hasPrefix), tail.count <= 2 {
                throw SandboxError.unavailable(detail: first)
            }
            throw SandboxError.failed(build: spec.name, status: exit, log: spec.log, tail: tail)
        }
    }

    enum Stop { case time, disk }

    /// Gives a tree Kiln made (an environment root) to the sandbox's uid, once: the top directory is changed
    /// last, so a tree whose top belongs to the uid is complete.
    static func adopt(_ path: String, by identity: SandboxIdentity) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            throw SandboxError.environment(path: path, detail: String(cString: strerror(errno)))
        }
        guard info.st_uid != identity.uid || info.st_gid != identity.gid else { return }
        let fd = try HostTree.openDirectory(path)
        defer { close(fd) }
        try HostTree.walk(fd) { _, directory, name, _ in
            fchownat(directory, name, identity.uid, identity.gid, AT_SYMLINK_NOFOLLOW)
            return true
        }
        guard lchown(path, identity.uid, identity.gid) == 0 else {
            throw SandboxError.environment(path: path, detail: String(cString: strerror(errno)))
        }
    }

    /// The step's bubblewrap in a process group of its own, stdin from /dev/null and stdout+stderr into `outputFD`.
    /// bubblewrap starts from a cleared environment (--clearenv); it needs nothing of Kiln's.
    static func spawn(
        _ arguments: [String], outputFD: Int32, passing: [Int32] = [],
        environment: [String: String] = ["PATH": "/usr/bin:/bin"]
    ) throws -> pid_t {
        do {
            return try ChildProcess.spawn(
                arguments, environment: environment, stdout: outputFD, stderr: outputFD, processGroup: true,
                passing: passing)
        } catch let failure as SpawnFailure {
            throw SandboxError.unavailable(detail: failure.description)
        }
    }
}

/// Splits a byte stream into lines (invalid UTF-8 is replaced, never fatal). A line longer than `longest` is
/// passed on in pieces of that size, so memory stays bounded whatever the step prints.
struct LineSplitter {
    private var pending: [UInt8] = []
    let longest: Int

    init(longest: Int = SandboxLimits.longestLine) {
        self.longest = longest
    }

    mutating func feed(_ bytes: ArraySlice<UInt8>) -> [String] {
        var lines: [String] = []
        var rest = bytes
        while !rest.isEmpty {
            let room = longest - pending.count
            let newline = rest.prefix(room).firstIndex(of: 0x0A)
            if let newline {
                pending += rest[rest.startIndex..<newline]
                rest = rest[(newline + 1)...]
            } else {
                pending += rest.prefix(room)
                rest = rest.dropFirst(room)
                if pending.count < longest { break }
            }
            lines.append(String(decoding: pending, as: UTF8.self))
            pending.removeAll(keepingCapacity: true)
        }
        return lines
    }

    mutating func finish() -> String? {
        defer { pending.removeAll() }
        return pending.isEmpty ? nil : String(decoding: pending, as: UTF8.self)
    }
}

/// The step's log file, bounded: the first half of `limit` is written as it comes, then only the last half is
/// kept (in memory, a fixed ring), and on `close` a line saying how many bytes were cut precedes it.
struct BoundedLog {
    let fd: Int32
    let head: Int64
    private(set) var written: Int64 = 0
    private var ring: [UInt8]
    private var ringStart = 0
    private var ringCount = 0
    private(set) var cut: Int64 = 0

    init(path: String, limit: Int64) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SandboxError.environment(
                path: path, detail: "cannot write the log: \(String(cString: strerror(errno)))")
        }
        head = max(limit / 2, 1)
        ring = [UInt8](repeating: 0, count: Int(max(limit - head, 1)))
    }

    /// True once the head is full: later output goes to the ring.
    var cutting: Bool { written >= head }

    mutating func append(_ bytes: ArraySlice<UInt8>) {
        var rest = bytes
        if written < head {
            let now = rest.prefix(Int(head - written))
            _ = now.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            written += Int64(now.count)
            rest = rest.dropFirst(now.count)
        }
        guard !rest.isEmpty else { return }
        let capacity = ring.count
        if rest.count >= capacity {
            cut += Int64(ringCount + rest.count - capacity)
            ring = Array(rest.suffix(capacity))
            ringStart = 0
            ringCount = capacity
            return
        }
        let overflow = max(0, ringCount + rest.count - capacity)
        cut += Int64(overflow)
        ringStart = (ringStart + overflow) % capacity
        ringCount -= overflow
        var position = (ringStart + ringCount) % capacity
        for chunk in [rest.prefix(capacity - position), rest.dropFirst(capacity - position)] where !chunk.isEmpty {
            ring.replaceSubrange(position..<position + chunk.count, with: chunk)
            position = 0
        }
        ringCount += rest.count
    }

    mutating func close() {
        if ringCount > 0 {
            if cut > 0 {
                let note =
                    "\n[kiln: \(cut) bytes of output cut here: the log keeps the first \(head) and the last "
                    + "\(ringCount) bytes]\n"
                _ = note.utf8CString.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count - 1) }
            }
            let ordered = Array(ring[ringStart...] + ring[..<ringStart]).prefix(ringCount)
            _ = ordered.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            ringCount = 0
        }
        fsync(fd)
        Glibc.close(fd)
    }
}
