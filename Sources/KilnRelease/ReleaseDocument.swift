import Foundation
import KilnOCI
import KilnProcess
import KilnStore

/// `releases/VERSION.json`: what one release published, pinned by digest, and what it was built from.
/// Written once by `kiln release` (pretty, sorted keys: reviewable in git), read by rollback, diff,
/// deploy-refs and gc; also pushed to the registry as an OCI artifact (see `ReleaseArtifact`).
public struct ReleaseDocument: Codable, Sendable, Equatable {
    public static let mediaType = "application/vnd.kiln.release.v1+json"

    public var releaseFormat = 1
    public var version: String
    /// RFC 3339: SOURCE_DATE_EPOCH when set, else the time of the release.
    public var created: String
    /// The source revision (`--revision`, else `git rev-parse HEAD`), absent outside a git checkout.
    public var revision: String?
    /// See `RecipeDigest.directory`: sha256 over every file of the recipes directory.
    public var recipesDigest: Digest?
    /// sha256 of `recipes/kiln.lock`, when there is one.
    public var lockDigest: Digest?
    /// The registry host[:port] and namespace the release was pushed to.
    public var registry: String
    public var namespace: String
    /// Tags `kiln release --moving-tag` pointed at this release (e.g. `stable`); rollback moves these by default.
    public var movingTags: [String]
    public var images: [Image]

    public struct Image: Codable, Sendable, Equatable {
        /// The image name in the local store (`komodod`).
        public var name: String
        /// The repository in the registry (`NAMESPACE/komodod`).
        public var repository: String
        /// `REGISTRY/REPOSITORY@sha256:…`: what to deploy.
        public var reference: String
        public var digest: Digest
        public var mediaType: String
        /// Tags pushed with the release (the version); moving tags are in `movingTags`.
        public var tags: [String]
        /// For an image index: each platform's manifest digest.
        public var platforms: [PlatformManifest]?

        public init(
            name: String, repository: String, reference: String, digest: Digest, mediaType: String, tags: [String],
            platforms: [PlatformManifest]?
        ) {
            self.name = name
            self.repository = repository
            self.reference = reference
            self.digest = digest
            self.mediaType = mediaType
            self.tags = tags
            self.platforms = platforms
        }
    }

    public struct PlatformManifest: Codable, Sendable, Equatable {
        public var platform: String
        public var digest: Digest
        public var mediaType: String
    }

    public init(
        version: String, created: String, revision: String?, recipesDigest: Digest?, lockDigest: Digest?,
        registry: String, namespace: String, movingTags: [String], images: [Image]
    ) {
        self.version = version
        self.created = created
        self.revision = revision
        self.recipesDigest = recipesDigest
        self.lockDigest = lockDigest
        self.registry = registry
        self.namespace = namespace
        self.movingTags = movingTags
        self.images = images.sorted { $0.name < $1.name }
    }

    /// The document's bytes: pretty, sorted keys, a final newline. The same document always gives the same bytes.
    public func encoded() throws -> Data {
        var data = try CanonicalJSON.pretty(self)
        data.append(0x0A)
        return data
    }

    public static func decode(_ data: Data, source: String) throws -> ReleaseDocument {
        do {
            return try CanonicalJSON.decode(ReleaseDocument.self, from: data, path: source)
        } catch {
            throw ReleaseError.invalidDocument(
                source: source, reason: (error as? JSONDocumentError)?.reason ?? "\(error)")
        }
    }
}

/// The `releases/` directory: one `VERSION.json` per release.
public struct ReleaseDirectory: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public func file(for version: String) -> String { "\(path)/\(version).json" }

    public func exists(_ version: String) -> Bool { FileManager.default.fileExists(atPath: file(for: version)) }

    public func load(_ version: String) throws -> ReleaseDocument {
        let file = file(for: version)
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ReleaseError.unknownRelease(version: version, directory: path)
        }
        return try ReleaseDocument.decode(data, source: file)
    }

    /// Writes `releases/VERSION.json` atomically (creating the directory).
    public func save(_ document: ReleaseDocument) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw StoreError.io(path: path, operation: "create the releases directory", detail: "\(error)")
        }
        try AtomicFile.write(document.encoded(), to: file(for: document.version))
    }

    /// Every release document, oldest first (by `created`, then version).
    public func all() throws -> [ReleaseDocument] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return try names.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted().map { name in
            let file = "\(path)/\(name)"
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ReleaseError.invalidDocument(source: file, reason: "unreadable")
            }
            return try ReleaseDocument.decode(data, source: file)
        }.sorted { ($0.created, $0.version) < ($1.created, $1.version) }
    }
}

/// What can go wrong releasing, rolling back, comparing or verifying.
public enum ReleaseError: Error, CustomStringConvertible {
    case noImages(version: String, layout: String)
    case unknownRelease(version: String, directory: String)
    case invalidDocument(source: String, reason: String)
    case missingContent(version: String, missing: [String])
    case unknownImage(name: String, known: [String])
    case invalidArgument(String)
    case mismatch(String)

    public var description: String {
        switch self {
        case .noImages(let version, let layout):
            return
                "no image in \(layout) is tagged :\(version): build with `kiln build --version \(version)` first (see `kiln images`)"
        case .unknownRelease(let version, let directory):
            return
                "no release \(version) in \(directory)/ (\(directory)/\(version).json): list them with `kiln releases`, or give --to REGISTRY/NAMESPACE to read it from the registry"
        case .invalidDocument(let source, let reason):
            return "\(source) is not a kiln release document: \(reason)"
        case .missingContent(let version, let missing):
            return
                "refusing to roll back to \(version): the registry lacks \(missing.count) item\(missing.count == 1 ? "" : "s") it needs, no tag was changed:\n"
                + missing.map { "  missing \($0)" }.joined(separator: "\n")
                + "\n    hint: push release \(version) again (`kiln release \(version) --to …` from a store that has it)"
        case .unknownImage(let name, let known):
            return "no image '\(name)' (known: \(known.joined(separator: ", ")))"
        case .invalidArgument(let text):
            return text
        case .mismatch(let text):
            return text
        }
    }
}

/// Digests that say what a release was built from.
public enum RecipeDigest {
    /// sha256 over the lines `<sha256 hex>  <relative path>\n` of every regular file below `directory`, sorted
    /// bytewise by path: the same as
    /// `(cd recipes && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum) | sha256sum`.
    /// Nil when the directory does not exist.
    public static func directory(_ directory: String) throws -> Digest? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue
        else { return nil }
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return nil }
        var files: [String] = []
        while let relative = walker.nextObject() as? String {
            let attributes = try? FileManager.default.attributesOfItem(atPath: directory + "/" + relative)
            let type = attributes?[.type] as? FileAttributeType
            if type == .typeRegular { files.append(relative) }
        }
        var listing = ""
        for relative in files.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            let digest = try file(directory + "/" + relative)
            listing += "\(digest.encoded)  \(relative)\n"
        }
        return Digest.sha256(listing)
    }

    /// sha256 of one file's content, streamed.
    public static func file(_ path: String) throws -> Digest {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw StoreError.io(path: path, operation: "read", detail: "cannot open")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(chunk) }
        return hasher.finalize()
    }

    /// `git rev-parse HEAD` in `directory`, or nil when it is not a git checkout (or git is missing).
    public static func gitRevision(in directory: String = ".") -> String? {
        guard let run = try? ChildProcess.capture(["git", "-C", directory, "rev-parse", "HEAD"], timeLimit: 30),
            run.status == 0
        else { return nil }
        let text = run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return text.range(of: "^[0-9a-f]{40,64}$", options: .regularExpression) != nil ? text : nil
    }
}

extension ReleaseDirectory {
    /// The released images the store still holds completely, as roots `kiln gc` must keep. An image only partly
    /// in the store keeps the platform manifests that are complete.
    public func roots(in layout: OCILayout) throws -> [Descriptor] {
        var roots: [Descriptor] = []
        for document in try all() {
            for image in document.images where layout.hasBlob(image.digest) {
                let descriptor = Descriptor(
                    mediaType: image.mediaType, digest: image.digest, size: layout.blobSize(image.digest) ?? 0)
                if (try? layout.reachableBlobs(from: descriptor)) != nil {
                    roots.append(descriptor)
                    continue
                }
                for platform in image.platforms ?? [] where layout.hasBlob(platform.digest) {
                    let child = Descriptor(
                        mediaType: platform.mediaType, digest: platform.digest,
                        size: layout.blobSize(platform.digest) ?? 0)
                    if (try? layout.reachableBlobs(from: child)) != nil { roots.append(child) }
                }
            }
        }
        return roots
    }
}
