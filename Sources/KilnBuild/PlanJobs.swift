import Foundation
import KilnLayer
import KilnOCI
import KilnRecipe

/// One thing a planned layer holds, resolved by the plan: the build stage turns it into entries without
/// looking anything up in the recipes.
enum LayerContent: Sendable {
    /// A local `add`: the files its pattern matched (prepare checked they exist and stay in the recipe).
    case files(LocalFiles, Placement)
    /// A url input, placed whole or as the archive members `extract` names; `digest` is nil only for an
    /// unpinned input (`kiln lock`), which prepare returns the digest of.
    case download(url: String, digest: Digest?, extract: [String]?, Placement)
    /// A file or directory a build step wrote (`build` is its `recipe/build` id, `name` the step's name).
    case buildOutput(build: String, name: String, path: String, Placement)
    /// A directory, symlink, inline file or accounts file: the entry itself.
    case entry(LayerEntry)
    /// A whole Debian package set (with its dpkg status) by its key.
    case debs(set: String, location: SourceLocation)
    /// One package of a `split: per-package` set.
    case package(set: String, name: String, location: SourceLocation)
}

/// Where an `add` puts what it takes, and the recipe line it was written on.
struct Placement: Sendable {
    var to: String
    var ownership: Ownership
    /// The recipe's `unpack-limit` for archives.
    var unpackLimit: Int64?
    var location: SourceLocation
}

/// A local `add`'s pattern (relative to the recipe's directory) and the files it matched.
struct LocalFiles: Sendable {
    var pattern: String
    var directory: String
    var paths: [String]
    var location: SourceLocation
    /// The digest of the entries it makes, contents included, once prepare hashed them (`LayerKeys.localDigest`).
    var digest: Digest?

    var isGlob: Bool { pattern.contains(where: { "*?[".contains($0) }) }
}

/// How the build stage assembles one image: everything it used to read from the recipe.
struct ImageJob: Sendable {
    enum Base: Sendable {
        case scratch
        /// A recipe of this build (or one it builds on).
        case recipe(String, SourceLocation)
        case image(reference: String, digest: Digest, SourceLocation)
    }
    var platforms: [Platform] = []
    var base = Base.scratch
    /// The recipe's `compression:`; `--compression` wins over it.
    var compression: LayerCompression?
    var settings = ImageConfig.ExecutionConfig()
    /// The image's annotations without its creation time (added by the build from SOURCE_DATE_EPOCH).
    var annotations: [String: String] = [:]
    var reset: Set<String> = []
    /// Built for fewer platforms than its recipe declares (`--platform`): not the image the lock records.
    var narrowed = false
}

/// What one recipe of an image's chain (the image's own, then its bases') contributes on a platform: its
/// file, its layers' downloads and package sets, its build steps' sources. The SBOM and the provenance are
/// written from these.
struct RecipeDependencies: Sendable {
    struct Layer: Sendable {
        var downloads: [(url: String, extract: [String]?)]
        var packageSet: String?
    }
    var file: String
    var layers: [Layer]
    var sources: [BuildSource]
}
