import Foundation
import KilnDebian
import KilnOCI
import KilnRecipe

/// Everything a build will make and from what, fully resolved like a compiler's intermediate form: every
/// image × platform with its layers and their concrete contents, every remote input, Debian package set and
/// build step (with its sources and, when the plan already knows them, its cache key). `kiln build --dry-run
/// --json` prints this value; prepare, compile, build and record read only it (never the recipes), so what
/// is printed and what is built cannot drift apart.
public struct BuildPlan: Codable, Sendable {
    /// In dependency order: an image's base recipe comes before it.
    public var images: [PlannedImage]
    /// Every `url` input, deduplicated, sorted by URL.
    public var inputs: [PlannedInput]
    public var packageSets: [PlannedPackageSet]
    /// Every build step (compile job), in the order they run.
    public var builds: [PlannedBuild] = []
    public var lockPath: String
    public var options: BuildOptions

    // Not serialised: what the later stages need besides the plan's values.
    /// The lock as it was read when planning.
    public internal(set) var lock = LockFile()
    /// The url inputs with their recipe lines, as `prepare` fetches them.
    var remoteInputs: [RemoteInput] = []
    /// Registry base images (`base: REGISTRY/NAME:TAG@sha256:…`) with their recipe lines, each once.
    var registryBases: [RegistryBase] = []
    /// Every local `add` (its pattern, recipe directory and the files it matched), for prepare's checks.
    var localFiles: [LocalFiles] = []

    enum CodingKeys: String, CodingKey { case images, inputs, packageSets, builds, lockPath, options }
}

/// A pinned registry base, as written in a recipe.
struct RegistryBase: Sendable {
    var reference: String
    var digest: Digest
    var location: SourceLocation
}

public struct PlannedImage: Codable, Sendable {
    public var name: String
    public var version: String
    /// `NAME:TAG` for every tag, the version's first.
    public var references: [String]
    public var base: PlannedBase
    public var platforms: [PlannedPlatform]
    /// The ports the recipe itself exposes (an assetchain's derived p2p and RPC ports), when any.
    public var ports: [String]?
    /// What the lock records for this image.
    public var lockedDigest: Digest?
    /// Not serialised: what the build stage needs to assemble the image.
    var job = ImageJob()

    enum CodingKeys: String, CodingKey { case name, version, references, base, platforms, ports, lockedDigest }
}

public struct PlannedBase: Codable, Sendable {
    public enum Kind: String, Codable, Sendable { case scratch, recipe, image }
    public var kind: Kind
    /// The recipe's name, or the registry reference of a pinned image.
    public var name: String?
    public var digest: Digest?
}

public struct PlannedPlatform: Codable, Sendable {
    public var platform: String
    /// The layers this recipe adds on this platform, bottom first (the base's are not repeated).
    public var layers: [PlannedLayer]
    /// Not serialised: what the image and its base recipes were made from on this platform (SBOM, provenance).
    var dependencies: [RecipeDependencies] = []

    enum CodingKeys: String, CodingKey { case platform, layers }
}

public struct PlannedLayer: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// A recipe layer (its files, and its package sets that are not split per package).
        case layer
        /// One package of a `split: per-package` set, named `LAYER/PACKAGE`.
        case package
        /// /etc/passwd, /etc/group and home directories for the recipe's users.
        case accounts
    }
    public var name: String
    public var kind: Kind
    /// The recipe layer it comes from (an index into the recipe's `layers`), for `layer` and `package`.
    public var spec: Int?
    public var items: [PlannedItem]
    /// A split package set the lock does not cover yet: `prepare` resolves it and the plan is settled into one
    /// layer per package it resolved to.
    public var pending: Bool?
    /// The plan key (`LayerKeys`): the layer cache is looked up under it before anything is fetched; nil when
    /// the layer is keyed from its content as it is written.
    public var key: String?
    /// Not serialised: the concrete contents the build turns into entries, in order.
    var contents: [LayerContent] = []

    enum CodingKeys: String, CodingKey { case name, kind, spec, items, pending, key }

    /// Two layers are the same plan when everything printed of them is (`contents` follow from it).
    public static func == (a: PlannedLayer, b: PlannedLayer) -> Bool {
        a.name == b.name && a.kind == b.kind && a.spec == b.spec && a.items == b.items && a.pending == b.pending
            && a.key == b.key
    }
}

/// One thing a layer holds, as an object (not a display string).
public struct PlannedItem: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case add, directory, symlink, file, packages, package }
    public var kind: Kind
    /// Where it lands in the image (`to` of an add, the path of anything else).
    public var path: String?
    /// A local path or glob relative to the recipe, or a URL.
    public var source: String?
    public var target: String?
    public var extract: [String]?
    /// The content's sha256 when known before building: a url input (recipe or lock), a file's bytes, a .deb.
    public var sha256: Digest?
    public var name: String?
    public var version: String?
    /// A package set: the packages asked for, and its key in the lock (`recipe/layer[/arch]`).
    public var packages: [String]?
    public var key: String?
    /// A package set's packages as locked (or resolved by `prepare`), not split into layers of their own.
    public var pins: [PinnedPackage]?
}

public struct PlannedInput: Codable, Sendable {
    public enum PinnedBy: String, Codable, Sendable { case recipe, lock, nothing }
    public var url: String
    public var sha256: Digest?
    public var pinnedBy: PinnedBy
    /// `file:line:col` of the first recipe line naming it.
    public var location: String
}

public struct PlannedPackageSet: Codable, Sendable {
    public enum Source: String, Codable, Sendable {
        /// Exactly the lock's packages (its request matches, or `--locked` demands them).
        case lock
        /// Resolved against the mirror by `prepare` (new, changed, or `kiln lock`).
        case resolve
    }
    /// `recipe/layer`, plus `/ARCH` when the recipe has several platforms: the lock's key.
    public var key: String
    public var image: String
    public var layer: String
    public var platform: String
    /// `suite components architecture: packages`, as the lock records it beside the set.
    public var request: String
    public var split: Bool
    public var source: Source
    /// The lock's packages when `source` is `lock`.
    public var packages: [PinnedPackage]?
    public var location: String
    /// Not serialised: what `prepare` asks the mirror, and the recipe line errors point at.
    var resolveRequest: PackageSetRequest?
    var at: SourceLocation?

    enum CodingKeys: String, CodingKey {
        case key, image, layer, platform, request, split, source, packages, location
    }
}

/// A build step: its environment (a package set), its sources, and its cache key when the plan already knows
/// it (the environment from the lock, every source pinned by content).
public struct PlannedBuild: Codable, Sendable {
    public var image: String
    public var name: String
    /// The environment's package set key (`recipe/build:NAME`).
    public var environment: String
    public var sources: [PlannedSource]
    /// The outputs' cache key (see `Pipeline.compileKey`); nil when it depends on what prepare finds.
    public var key: String?
    public var location: String
    /// Not serialised: the step as written, and the directory its `dir:` sources are relative to.
    var spec: BuildSpec?
    var directory = ""
    /// Every source's content id when each is pinned by content (nil with a `dir:` source, hashed by prepare).
    var pinnedSources: [ResolvedSource]?

    enum CodingKeys: String, CodingKey { case image, name, environment, sources, key, location }

    /// `recipe/build`: how compile's outputs and prepare's sources are keyed.
    public var id: String { "\(image)/\(name)" }
}

/// A build step's source as pinned: a git commit (and tree), an archive by sha256, or a local directory.
public struct PlannedSource: Codable, Sendable {
    public var name: String
    public var git: String?
    public var commit: String?
    public var tree: String?
    public var url: String?
    public var sha256: Digest?
    public var dir: String?
}
