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
        }
    }
}
