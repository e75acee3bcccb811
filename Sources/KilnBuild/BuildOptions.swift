import Foundation
import KilnHTTP
import KilnLayer
import KilnOCI
import KilnRegistry
import Logging

/// How a build treats the lock file (`recipes/kiln.lock`).
public enum LockMode: String, Codable, Sendable {
    /// A plain `kiln build`: locked package sets are used while their request is unchanged, everything else is
    /// resolved; an existing lock is brought up to date after a successful build.
    case update
    /// `kiln build --locked`: inputs, package sets and image digests exactly as the lock records them; any
    /// difference fails the build before anything is tagged, and the lock is never written.
    case locked
    /// `kiln verify`: package sets and inputs exactly as locked; image digests are what is being checked, so
    /// they are not compared, and nothing is recorded.
    case verify
    /// `kiln lock`: every package set resolved again, unpinned downloads trusted, a recipe's sha256 wins over
    /// the lock's; nothing is built.
    case refresh
}

/// What a caller decides about a build. Everything the pipeline works out itself (fetched inputs, resolved
/// package sets, base images) lives in `BuildPlan` and `PreparedInputs` instead.
public struct BuildOptions: Codable, Sendable {
    /// The one timestamp of every file, config and history entry (SOURCE_DATE_EPOCH, else 0).
    public var sourceDateEpoch: Int64
    /// Overrides every recipe's compression.
    public var compression: LayerCompression?
    public var threads: Int
    /// Read every input file again instead of trusting unchanged size/mtime/ctime/inode.
    public var rehash: Bool
    /// Replaces every recipe's version (CI release builds).
    public var version: String?
    /// Tags added to every image built (e.g. the git commit).
    public var extraTags: [String]
    /// Recorded as `org.opencontainers.image.revision`.
    public var revision: String?
    public var lockMode: LockMode
    /// Recipes built at once (each also compresses on several threads).
    public var jobs: Int
    /// Where url inputs come from (cache, `--sources`, `--offline`) and the HTTP settings of every download.
    public var inputs: InputOptions = InputOptions()
    /// Registry settings for pulling digest-pinned base images.
    public var registry: RegistryOptions = RegistryOptions()
    /// The environment Debian mirrors are chosen from (`KILN_DEBIAN_MIRROR`).
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    /// Accept files added to a layer that are ELF binaries for another machine than the platform being built
    /// (`--allow-foreign-binaries`; say, a cross toolchain shipped on purpose).
    public var allowForeignBinaries = false
    /// `--platform`: build only these of each recipe's platforms (nil: all of them).
    public var platforms: [Platform]? = nil
    /// `--cache-from REGISTRY/REPOSITORY` (in order) and `--cache-to`: the layer cache shared through registries.
    public var cacheFrom: [String] = []
    public var cacheTo: String? = nil

    /// Only the decisions that shape the output are part of a serialised plan.
    enum CodingKeys: String, CodingKey {
        case sourceDateEpoch, compression, threads, rehash, version, extraTags, revision, lockMode, jobs, platforms
    }

    public init(
        sourceDateEpoch: Int64 = Timestamp.sourceDateEpoch(), compression: LayerCompression? = nil,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount, rehash: Bool = false, version: String? = nil,
        extraTags: [String] = [], revision: String? = nil, lockMode: LockMode = .update, jobs: Int = 2,
        inputs: InputOptions = InputOptions(), registry: RegistryOptions = RegistryOptions()
    ) {
        self.sourceDateEpoch = sourceDateEpoch
        self.compression = compression
        self.threads = threads
        self.rehash = rehash
        self.version = version
        self.extraTags = extraTags
        self.revision = revision
        self.lockMode = lockMode
        self.jobs = jobs
        self.inputs = inputs
        self.registry = registry
    }

    /// Never open a connection: every input, package and base must already be on this machine.
    public var offline: Bool { inputs.offline }
    public var http: HTTPOptions { inputs.http }

    /// Where the stages log what they decide behind the user's back (layer cache hits and misses, lock
    /// decisions, where an input was found): the transport's logger, so one logger set by the caller serves
    /// the whole build.
    public var logger: Logger {
        get { inputs.http.logger }
        set { inputs.http.logger = newValue }
    }
}

/// What every stage of a build reports while it works (prepare, compile, build); the CLI turns these into
/// progress lines.
public enum BuildEvent: Sendable {
    /// Prepare: a url input found, downloaded or trusted.
    case input(InputEvent)
    /// Prepare: a registry base image transferred.
    case transfer(TransferEvent)
    /// A line of its own: a package set decision, a build step's output or outcome.
    case status(String)
    /// A step that may take seconds is starting (a Debian index downloaded, verified, parsed): a live line on
    /// a terminal, a line of its own in a log.
    case step(String)
    case layerReused(image: String, layer: String, digest: Digest)
    /// The layer came from a `--cache-from` repository (not built here).
    case layerFetched(image: String, layer: String, digest: Digest, from: String)
    case layerStarted(image: String, layer: String, inputBytes: Int64)
    case layerProgress(image: String, layer: String, done: Int64, total: Int64)
    case layerBuilt(image: String, layer: String, digest: Digest, size: Int64, seconds: Double)
    case imageTagged(image: String, references: [String], digest: Digest)
}

/// The outcome for one image.
public struct BuiltImage: Codable, Sendable {
    public struct Layer: Codable, Sendable {
        public var name: String
        public var digest: Digest
        public var diffID: Digest
        public var size: Int64
        public var reused: Bool
    }

    public var name: String
    public var references: [String]
    public var digest: Digest
    public var mediaType: String
    public var platforms: [String]
    /// The layers this recipe added (not the base's), for the first platform.
    public var layers: [Layer]
    /// Layers written and reused for this image, counted over every platform it was built for.
    public var layersWritten: Int
    public var layersReused: Int
    public var seconds: Double
}
