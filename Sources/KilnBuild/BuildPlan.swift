import Foundation
import KilnDebian
import KilnOCI
import KilnRecipe

/// Everything a build will make and from what: every image × platform with its layers, every remote input and
/// Debian package set, with every digest the recipes and the lock already know. `kiln build --dry-run --json`
/// prints this value; `Pipeline.build` builds exactly its layers, so the two cannot drift apart.
public struct BuildPlan: Codable, Sendable {
    /// In dependency order: an image's base recipe comes before it.
    public var images: [PlannedImage]
    /// Every `url` input, deduplicated, sorted by URL.
    public var inputs: [PlannedInput]
    public var packageSets: [PlannedPackageSet]
    public var lockPath: String
    public var options: BuildOptions

    // Not serialised: what the later stages need besides the plan's values.
    /// The recipes to build (a closure over bases), in dependency order.
    public internal(set) var recipes: [Recipe] = []
    /// Every recipe loaded, for base chains that reach outside the images built (accounts, SBOMs).
    public internal(set) var allRecipes: [Recipe] = []
    /// The lock as it was read when planning.
    public internal(set) var lock = LockFile()

    enum CodingKeys: String, CodingKey { case images, inputs, packageSets, lockPath, options }

    public func recipe(named name: String) -> Recipe? {
        allRecipes.first { $0.name == name } ?? recipes.first { $0.name == name }
    }
}

public struct PlannedImage: Codable, Sendable {
    public var name: String
    public var version: String
    /// `NAME:TAG` for every tag, the version's first; the first is what the lock records.
    public var references: [String]
    public var base: PlannedBase
    public var platforms: [PlannedPlatform]
    /// What the lock records for `references[0]`.
    public var lockedDigest: Digest?
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
    /// A split package set the lock does not cover yet: `prepare` resolves it and replans this layer into one
    /// layer per package.
    public var pending: Bool?
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
}
