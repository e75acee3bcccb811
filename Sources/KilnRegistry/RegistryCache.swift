import Foundation
import KilnOCI
import KilnStore

/// A registry repository as a build cache several machines share (BuildKit's `--cache-to/--cache-from
/// type=registry`, kaniko's `--cache-repo`). Each entry is one OCI artifact (`artifactType` Kiln's cache type)
/// tagged `kiln-<kind>-<key>`: its first layer is the entry's record (JSON: what the key produced, as the
/// builder's own cache records it), the other layers are the entry's blobs (a layer blob; a build step's
/// outputs as a tar). The manifest is annotated with its kind and key.
///
/// The repository knows nothing of what a key means: the keys, and the check that an entry's content is what its
/// key recorded, are the builder's. Entries are content-addressed and written blobs first, manifest by digest,
/// tag last, so concurrent writers of one key race only on a tag that names equal content, and a reader never
/// sees a half-written entry. Retention: one tag per key; what no tag reaches goes with the registry's own
/// garbage collection.
public struct RegistryCache: Sendable {
    public static let artifactType = "application/vnd.dev.kiln.cache.v1"
    public static let recordType = "application/vnd.dev.kiln.cache.record.v1+json"
    static let keyAnnotation = "dev.kiln.cache.key"
    static let kindAnnotation = "dev.kiln.cache.kind"

    /// What an entry caches.
    public enum Kind: String, Sendable {
        /// A layer by its layer-cache key.
        case layer
        /// A build step's outputs by its compile key.
        case build
    }

    /// An entry as found: its record's bytes, and the blobs it lists (in order, after the record).
    public struct Entry: Sendable {
        public var record: Data
        public var blobs: [Descriptor]
        /// The artifact's manifest digest.
        public var digest: Digest
    }

    public enum Lookup: Sendable {
        case hit(Entry)
        case miss
        /// Under the key's tag, but not an entry Kiln wrote for that key: not used (the reason says why).
        case refused(String)
    }

    public let repository: RegistryRepository

    public init(repository: RegistryRepository) { self.repository = repository }

    /// `kiln-<kind>-<key>` (a sha256 hex key: 75 characters, within the 128 a tag may have).
    public static func tag(_ kind: Kind, key: String) -> String { "kiln-\(kind.rawValue)-\(key)" }

    /// Publishes an entry: each blob from its local file, the record, the manifest by digest, then the tag.
    /// Returns the manifest's descriptor.
    @discardableResult
    public func put(_ kind: Kind, key: String, record: Data, blobs: [(descriptor: Descriptor, path: String)])
        async throws -> Descriptor
    {
        let recordDescriptor = Descriptor(mediaType: Self.recordType, bytes: record)
        let empty = Data("{}".utf8)
        let manifest = Manifest(
            config: Descriptor(mediaType: MediaType.empty, bytes: empty),
            layers: [recordDescriptor] + blobs.map(\.descriptor),
            annotations: [Self.keyAnnotation: key, Self.kindAnnotation: kind.rawValue],
            artifactType: Self.artifactType)
        let data = try CanonicalJSON.encode(manifest)
        let root = Descriptor(mediaType: MediaType.imageManifest, bytes: data)
        let staging = FileManager.default.temporaryDirectory.path + "/kiln-cache-\(UUID().uuidString.lowercased())"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: staging) }
        var files: [Digest: String] = [:]
        for (name, bytes) in [("record", record), ("empty", empty)] {
            let path = staging + "/" + name
            try AtomicFile.write(bytes, to: path)
            files[Digest.sha256(bytes)] = path
        }
        for blob in blobs { files[blob.descriptor.digest] = blob.path }
        let source = LocalFiles(files: files, documents: [root.digest: data])
        try await copyImage(
            root, from: source, to: repository, tags: [Self.tag(kind, key: key)],
            jobs: repository.client.options.jobs)
        return root
    }

    /// The entry tagged for `key`, its record downloaded and checked against its digest. An artifact of another
    /// type, kind or key under the tag is refused (someone else's tag, or a poisoned one).
    public func get(_ kind: Kind, key: String) async throws -> Lookup {
        let tag = Self.tag(kind, key: key)
        let client = repository.client
        guard try await client.manifestDescriptor(repository.repository, tag) != nil else { return .miss }
        let (data, descriptor) = try await client.manifest(repository.repository, tag)
        guard let manifest = try? CanonicalJSON.decode(Manifest.self, from: data) else {
            return .refused("\(tag) is not an OCI manifest")
        }
        guard manifest.artifactType == Self.artifactType else {
            return .refused("\(tag) is not a Kiln cache entry (artifactType \(manifest.artifactType ?? "none"))")
        }
        guard manifest.annotations?[Self.keyAnnotation] == key,
            manifest.annotations?[Self.kindAnnotation] == kind.rawValue
        else {
            return .refused("\(tag) records another key or kind than its tag names")
        }
        guard let first = manifest.layers.first, first.mediaType == Self.recordType, first.size <= 1 << 20 else {
            return .refused("\(tag) has no record")
        }
        let path = FileManager.default.temporaryDirectory.path + "/kiln-cache-record-\(UUID().uuidString.lowercased())"
        defer { unlink(path) }
        try await client.downloadBlob(repository.repository, first, to: path)
        guard let record = FileManager.default.contents(atPath: path) else {
            return .refused("\(tag): its record could not be read")
        }
        return .hit(Entry(record: record, blobs: Array(manifest.layers.dropFirst()), digest: descriptor.digest))
    }

    /// Downloads one of an entry's blobs into a new file at `path` (digest and size checked: nothing is left
    /// on a mismatch).
    public func download(_ blob: Descriptor, to path: String) async throws {
        try await repository.client.downloadBlob(repository.repository, blob, to: path)
    }
}

/// Blobs in local files and documents in memory, as the source of a copy.
struct LocalFiles: BlobSource {
    var files: [Digest: String]
    var documents: [Digest: Data]

    var location: String { "local files" }
    func document(_ descriptor: Descriptor) async throws -> Data? { documents[descriptor.digest] }
    func localFile(_ descriptor: Descriptor) -> String? { files[descriptor.digest] }
    func download(_ descriptor: Descriptor, to path: String) async throws {
        throw GraphCopyError.absent(descriptor.digest, location)
    }
}
