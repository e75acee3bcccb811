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
/// Owned by the registry layer: a `RegistryClient` whose options name a cache starts its `BlobLocations` from
/// it, and every push and copy through that client writes back what it learnt.
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

    /// Writes back what `locations` learnt since it was last saved (stale places dropped, then seen ones added).
    public func save(_ locations: BlobLocations, registry: String) {
        let (seen, stale) = locations.takeLearnt()
        remember(seen, forget: stale, in: registry)
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

/// Which repository of a registry holds which blob: what this run saw (confirmed), and what earlier runs saw
/// (the blob-location cache, unconfirmed until a mount from there succeeds). Mounts try confirmed places first.
/// It also keeps what it learnt (places seen, places a mount was refused from) until the cache takes it.
public final class BlobLocations: Sendable {
    private struct State {
        /// Per blob, confirmed places first (newest first), then cached ones.
        var places: [Digest: [(repository: String, confirmed: Bool)]] = [:]
        var seen: [(Digest, String)] = []
        var stale: [(Digest, String)] = []
    }
    private let state = Mutex(State())

    public init() {}

    /// This run saw the blob in `repository` (uploaded, mounted, or found there). `learnt` false: known without
    /// asking this registry (the repository a copy reads from), so not worth remembering beyond this run.
    public func record(_ digest: Digest, in repository: String, learnt: Bool = true) {
        state.withLock { state in
            var list = state.places[digest, default: []]
            list.removeAll { $0.repository == repository }
            list.insert((repository, true), at: 0)
            state.places[digest] = list
            if learnt { state.seen.append((digest, repository)) }
        }
    }

    /// An earlier run saw the blob in `repository` (it may be gone since).
    public func remembered(_ digest: Digest, in repository: String) {
        state.withLock { state in
            guard state.places[digest]?.contains(where: { $0.repository == repository }) != true else { return }
            state.places[digest, default: []].append((repository, false))
        }
    }

    /// The registry refused to mount the blob from `repository`: it is not there (any more).
    public func forget(_ digest: Digest, in repository: String) {
        state.withLock { state in
            state.places[digest]?.removeAll { $0.repository == repository }
            state.stale.append((digest, repository))
        }
    }

    /// Where to mount the blob from (not `excluded`), and whether this run saw it there.
    func source(for digest: Digest, other excluded: String) -> (String, Bool)? {
        state.withLock { state in
            state.places[digest]?.first { $0.repository != excluded }.map { ($0.repository, $0.confirmed) }
        }
    }

    /// What was learnt since the last call: places seen (in order) and places found stale.
    func takeLearnt() -> (seen: [(Digest, String)], stale: [(Digest, String)]) {
        state.withLock { state in
            defer {
                state.seen = []
                state.stale = []
            }
            return (state.seen, state.stale)
        }
    }
}
