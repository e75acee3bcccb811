import Foundation
import KilnOCI
import KilnStore
import Synchronization

/// Where Kiln has seen each blob in each registry, kept between runs, so a blob another repository of the
/// registry already holds is mounted instead of sent again (skopeo keeps a blob-info cache for the same
/// reason). A stale entry costs one refused mount and is dropped; the blob is then mounted from where this run
/// put it, or uploaded.
///
/// File: `$KILN_CACHE_DIR/blob-locations.json`, else `$XDG_CACHE_HOME/kiln/…`, else `~/.cache/kiln/…`.
public struct BlobLocationCache: Sendable {
    public let path: String
    /// Repositories kept per blob, and blobs kept per registry (the oldest go first).
    static let repositoriesPerBlob = 4
    static let blobsPerRegistry = 50_000

    public init(path: String) { self.path = path }

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let directory: String
        if let dir = environment["KILN_CACHE_DIR"], !dir.isEmpty {
            directory = dir
        } else if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            directory = xdg + "/kiln"
        } else {
            directory = (environment["HOME"] ?? NSHomeDirectory()) + "/.cache/kiln"
        }
        self.init(path: directory + "/blob-locations.json")
    }

    struct Entry: Codable {
        var repositories: [String]
        var seen: Int
    }
    typealias Contents = [String: [String: Entry]]

    func read() -> Contents {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        return (try? JSONDecoder().decode(Contents.self, from: data)) ?? [:]
    }

    /// A `BlobLocations` primed with what is known of `registry` (empty when the file is absent or unreadable).
    public func locations(for registry: String) -> BlobLocations {
        let known = BlobLocations()
        for (digest, entry) in read()[registry] ?? [:] {
            guard let digest = try? Digest(parsing: digest) else { continue }
            for repository in entry.repositories { known.remembered(digest, in: repository) }
        }
        return known
    }

    /// Adds what a run learnt (`(digest, repository)` pairs) and drops the places a mount was refused from
    /// (`stale`). Best effort: a cache that cannot be written only costs uploads later, so failures are ignored.
    public func remember(_ seen: [(Digest, String)], forget stale: [(Digest, String)] = [], in registry: String) {
        guard !seen.isEmpty || !stale.isEmpty else { return }
        var contents = read()
        var entries = contents[registry] ?? [:]
        let now = Int(Date().timeIntervalSince1970)
        for (digest, repository) in stale {
            entries[digest.description]?.repositories.removeAll { $0 == repository }
            if entries[digest.description]?.repositories.isEmpty == true { entries[digest.description] = nil }
        }
        for (digest, repository) in seen {
            var entry = entries[digest.description] ?? Entry(repositories: [], seen: now)
            entry.repositories.removeAll { $0 == repository }
            entry.repositories.insert(repository, at: 0)
            entry.repositories = Array(entry.repositories.prefix(Self.repositoriesPerBlob))
            entry.seen = now
            entries[digest.description] = entry
        }
        if entries.count > Self.blobsPerRegistry {
            let keep = entries.sorted { $0.value.seen > $1.value.seen }.prefix(Self.blobsPerRegistry)
            entries = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
        }
        contents[registry] = entries
        guard let data = try? CanonicalJSON.encode(contents) else { return }
        try? FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try? AtomicFile.write(data, to: path)
    }
}

/// What a run learnt about blob locations, from its transfer events: where blobs were found, mounted or
/// uploaded, and which places a mount was refused from. `save` writes it into the cache.
public final class BlobSightings: Sendable {
    private let places = Mutex<(seen: [(Digest, String)], stale: [(Digest, String)])>(([], []))

    public init() {}

    /// Passes each event on to `next` after noting where a blob now is (or is not).
    public func tap(_ next: @escaping @Sendable (TransferEvent) -> Void) -> @Sendable (TransferEvent) -> Void {
        { event in
            switch event {
            case .blobSkipped(let repository, let digest, _), .blobMounted(let repository, let digest, _, _),
                .blobUploaded(let repository, let digest, _):
                self.places.withLock { $0.seen.append((digest, repository)) }
            case .mountRefused(_, let digest, let from):
                self.places.withLock { $0.stale.append((digest, from)) }
            default: break
            }
            next(event)
        }
    }

    /// The places seen, in order.
    public var all: [(Digest, String)] { places.withLock { $0.seen } }

    /// Writes what was learnt into `cache` for `registry` (stale places dropped, then seen ones added).
    public func save(to cache: BlobLocationCache, registry: String) {
        let (seen, stale) = places.withLock { ($0.seen, $0.stale) }
        cache.remember(seen, forget: stale, in: registry)
    }
}
