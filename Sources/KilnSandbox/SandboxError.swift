/// What can go wrong preparing or running a build step. Each message names the file, build or id at fault
/// and what to do about it.
public enum SandboxError: Error, CustomStringConvertible, Equatable {
    /// A source directory or archive could not be read.
    case source(path: String, detail: String)
    /// A git source whose extracted tree is not the pinned commit's tree.
    case treeMismatch(source: String, expected: String, actual: String)
    /// bubblewrap is missing or cannot create the namespaces it needs.
    case unavailable(detail: String)
    /// The build step ran and failed.
    case failed(build: String, status: Int32, log: String, tail: [String])
    /// The build step ran longer than its wall-clock limit and was killed.
    case timedOut(build: String, seconds: Int, log: String, tail: [String])
    /// A declared output is not where the step should have left it.
    case missingOutput(build: String, path: String)
    /// The environment root could not be written.
    case environment(path: String, detail: String)
    /// A declared output (or a `from:` path) goes through something that is not a real directory: a symlink
    /// the step made, which Kiln never follows on the host.
    case outputThroughLink(build: String, path: String, through: String, symlink: Bool)
    /// An output tree holds something other than regular files, directories and symlinks.
    case outputKind(build: String, path: String, kind: String)
    /// The step wrote more than its disk limit under /work and /out and was stopped.
    case diskLimit(build: String, limit: Int64, log: String)

    public var description: String {
        switch self {
        case .source(let path, let detail):
            return "source \(path): \(detail)"
        case .treeMismatch(let source, let expected, let actual):
            return
                "source \(source): its git tree is \(actual), but the pinned commit's tree is \(expected); "
                + "supply an archive of exactly the pinned commit (or update `commit:` and `tree:` together)"
        case .unavailable(let detail):
            return
                "cannot start the build sandbox: \(detail); install bubblewrap (Debian package `bubblewrap`) and "
                + "allow user namespaces (sysctl kernel.unprivileged_userns_clone=1), or run as root"
        case .failed(let build, let status, let log, let tail):
            return "build \(build) failed with exit status \(status)\n"
                + tail.map { "  \(build) ▸ \($0)" }.joined(separator: "\n") + "\nfull log: \(log)"
        case .timedOut(let build, let seconds, let log, let tail):
            return "build \(build) ran longer than its limit of \(seconds) s and was stopped\n"
                + tail.map { "  \(build) ▸ \($0)" }.joined(separator: "\n") + "\nfull log: \(log)"
        case .missingOutput(let build, let path):
            return "build \(build) succeeded but did not produce its output \(path); "
                + "write it under /out (or fix `outputs:`)"
        case .environment(let path, let detail):
            return "build environment \(path): \(detail)"
        case .outputThroughLink(let build, let path, let through, let symlink):
            return "build \(build): output \(path) goes through \(through), which the step made "
                + (symlink ? "a symlink" : "something other than a directory")
                + "; Kiln never follows a build's symlinks on the host: name the real path (or make the symlink "
                + "itself the output, which keeps it a symlink in the image)"
        case .outputKind(let build, let path, let kind):
            return "build \(build): output \(path) is \(kind); only regular files, directories and symlinks can "
                + "be outputs (remove it in the step, or name only what a layer needs in `outputs:`)"
        case .diskLimit(let build, let limit, let log):
            return "build \(build) wrote more than its disk limit of \(ByteCount.text(limit)) under /work and /out "
                + "and was stopped; raise `limits: {disk: …}` in the build if it really needs more\nfull log: \(log)"
        }
    }
}

/// Byte counts as people read them in messages and limits: `512 MiB`, `2 GiB`.
public enum ByteCount {
    public static func text(_ bytes: Int64) -> String {
        for (unit, size) in [("GiB", Int64(1) << 30), ("MiB", Int64(1) << 20), ("KiB", Int64(1) << 10)]
        where bytes >= size {
            let value = Double(bytes) / Double(size)
            return value == value.rounded() ? "\(Int64(value)) \(unit)" : String(format: "%.1f", value) + " " + unit
        }
        return "\(bytes) B"
    }
}
