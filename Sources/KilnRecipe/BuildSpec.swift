import KilnOCI

/// A build step: compiles sources in a hermetic sandbox whose root is a locked Debian package set. Layers
/// take its outputs with `add: [{from: NAME, src: PATH, to: DEST}]`.
public struct BuildSpec: Sendable {
    /// Unique within the recipe; names the step in logs, errors and `from:`.
    public var name: String
    /// The build environment: a Debian package set (same keys as a `packages:` layer), unpacked read-only.
    public var environment: PackageSetSpec
    /// Each source is mounted read-only at `/src/NAME`; in the order written.
    public var sources: [BuildSource]
    public var run: BuildCommand
    /// Absolute paths under `/out` or `/work` captured after a successful run.
    public var outputs: [String]
    /// Extra environment variables (the sandbox's fixed ones cannot be overridden).
    public var env: [String: String]
    /// Wall-clock limit in seconds.
    public var timeout: Int
    /// `limits:`: what the recipe raises (or lowers) of the sandbox's bounds; nil keeps Kiln's default.
    public var limits: BuildLimits = BuildLimits()
    public var location: SourceLocation

    public static let defaultTimeout = 3600

    /// The directory inside the sandbox a source is mounted at.
    public static func mountPoint(_ source: String) -> String { "/src/" + source }
}

/// A build's `limits: {tmp: 4GiB, disk: 20GiB, log: 64MiB, processes: 2048}`; sizes in bytes.
public struct BuildLimits: Sendable, Hashable {
    public var tmp: Int64?
    public var disk: Int64?
    public var log: Int64?
    public var processes: Int?

    public init(tmp: Int64? = nil, disk: Int64? = nil, log: Int64? = nil, processes: Int? = nil) {
        self.tmp = tmp
        self.disk = disk
        self.log = log
        self.processes = processes
    }

    /// `512MiB`, `2 GiB`, `1048576`: a whole number with an optional binary unit (KiB, MiB, GiB, TiB).
    public static func bytes(_ text: String) -> Int64? {
        let trimmed = text.replacingOccurrences(of: " ", with: "")
        let units: [(String, Int64)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40)]
        for (unit, size) in units where trimmed.hasSuffix(unit) {
            guard let number = Int64(trimmed.dropLast(unit.count)), number > 0, number <= Int64.max / size else {
                return nil
            }
            return number * size
        }
        return Int64(trimmed).flatMap { $0 > 0 ? $0 : nil }
    }
}

public enum BuildCommand: Sendable, Hashable {
    /// Run by `/bin/sh -e -c`.
    case script(String)
    /// Run as given, resolved through the sandbox's PATH.
    case argv([String])

    /// The command line the sandbox runs.
    public var command: [String] {
        switch self {
        case .script(let text): return ["/bin/sh", "-e", "-c", text]
        case .argv(let argv): return argv
        }
    }
}

/// Where a build's source comes from.
public struct BuildSource: Sendable, Hashable {
    public var name: String
    public var kind: Kind
    public var location: SourceLocation

    public enum Kind: Sendable, Hashable {
        /// An archive fetched once and checked against its sha256; a single top-level directory is stripped.
        case archive(url: String, sha256: Digest)
        /// A directory relative to the recipe file, mounted as it is.
        case directory(path: String)
        /// A git repository pinned by commit. `tree` is the commit's tree id (what any archive of the commit
        /// is checked against); when the recipe does not give it, the lock must.
        case git(url: String, commit: String, tree: String?)
    }
}
