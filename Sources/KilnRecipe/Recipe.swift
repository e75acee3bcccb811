import KilnOCI

/// One image, as a recipe file describes it (after matrix expansion).
public struct Recipe: Sendable {
    public var name: String
    public var version: String
    /// Extra tags besides the version.
    public var tags: [String]
    public var platforms: [Platform]
    public var base: Base
    public var layers: [LayerSpec]
    public var users: [UserSpec]
    public var groups: [GroupSpec]
    /// What the recipe sets in the image config (merged over the base's by the builder).
    public var settings: ImageConfig.ExecutionConfig
    public var annotations: [String: String]
    /// Inherited settings that start empty: any of `ports`, `volumes`, `labels`, `env`.
    public var reset: Set<String> = []
    /// `gzip` (default), `zstd` or `none`.
    public var compression: String?
    /// The recipe file (absolute path); relative paths in it resolve against its directory.
    public var file: String
    public var location: SourceLocation
    public var baseLocation: SourceLocation?
    /// Build steps whose outputs layers take with `add: {from: NAME}`.
    public var builds: [BuildSpec] = []
    /// For matrix images: the entry's fields, for labels and diagnostics.
    public var matrixEntry: [String: String]?
    /// The recipe's own `platforms:` when a build narrowed `platforms` (`kiln build --platform`): names that
    /// depend on how many platforms the recipe has, such as lock keys, stay the same in a narrowed build.
    public var declaredPlatforms: [Platform] { narrowedFrom ?? platforms }
    var narrowedFrom: [Platform]? = nil

    public var directory: String {
        guard let slash = file.lastIndex(of: "/") else { return "." }
        return String(file[..<slash])
    }

    /// Every tag this image gets: the version first, then the extra tags.
    public var allTags: [String] { [version] + tags.filter { $0 != version } }
}

public enum Base: Sendable, Hashable {
    case scratch
    /// Another recipe, by name: its layers are shared, not copied.
    case recipe(String)
    /// A registry image pinned by digest.
    case image(reference: String, digest: Digest)
}

/// An ordered, named layer.
public struct LayerSpec: Sendable {
    public var name: String
    public var items: [LayerItem]
    public var location: SourceLocation
    /// `platforms:` the layer is built for only these of the recipe's platforms (nil: all of them).
    public var platforms: [Platform]? = nil
}

public enum LayerItem: Sendable {
    case add(AddSpec)
    case directory(DirectorySpec)
    case symlink(SymlinkSpec)
    case file(FileSpec)
    case packages(PackageSetSpec)
}

public struct Ownership: Sendable, Hashable, Codable {
    public var mode: UInt32?
    public var uid: Int
    public var gid: Int
}

/// Local files (`src`, relative to the recipe, globs allowed) or a download (`url` + `sha256`), optionally
/// picking members out of an archive (`extract`), placed at `to`.
public struct AddSpec: Sendable {
    public var source: Source
    public var to: String
    public var ownership: Ownership
    public var location: SourceLocation
    /// `unpack-limit`: how many bytes an `extract` archive may expand to, replacing the default limits (total
    /// and ratio) for one archive that really is that big.
    public var unpackLimit: Int64? = nil
    /// `platforms:` the entry goes into the images of only these of the recipe's platforms (nil: all of them),
    /// so each platform can take its own binary.
    public var platforms: [Platform]? = nil

    public enum Source: Sendable, Hashable {
        case local(pattern: String)
        case remote(url: String, sha256: Digest?, extract: [String]?)
        /// An output of a build step of the same recipe (`from:`), by its path in the sandbox.
        case build(name: String, path: String)
    }
}

public struct DirectorySpec: Sendable {
    public var path: String
    public var ownership: Ownership
    public var location: SourceLocation
}

public struct SymlinkSpec: Sendable {
    public var path: String
    public var target: String
    public var location: SourceLocation
}

public struct FileSpec: Sendable {
    public var path: String
    public var content: String
    public var ownership: Ownership
    public var location: SourceLocation
}

/// Debian packages resolved, verified and unpacked by Kiln.
public struct PackageSetSpec: Sendable {
    public var suite: String
    public var components: [String]
    public var packages: [String]
    public var mirror: String?
    public var keyring: String?
    /// `none` (one layer) or `per-package`.
    public var split: String
    public var location: SourceLocation
}

public struct UserSpec: Sendable, Hashable {
    public var name: String
    public var uid: Int
    public var gid: Int
    public var home: String
    public var shell: String
    public var location: SourceLocation
}

public struct GroupSpec: Sendable, Hashable {
    public var name: String
    public var gid: Int
    public var members: [String]
    public var location: SourceLocation
}
