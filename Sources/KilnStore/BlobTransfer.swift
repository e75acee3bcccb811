import Foundation
import KilnOCI
import Synchronization

/// Somewhere images are read from: the store, a registry repository.
public protocol BlobSource: Sendable {
    /// Names the place in messages (`the store /x`, `127.0.0.1:5000/ns/app`).
    var location: String { get }
    /// The exact bytes of a manifest or index (digest verified), or nil when the source does not have it.
    func document(_ descriptor: Descriptor) async throws -> Data?
    /// The blob as a file on this machine when the source keeps it there (no copy needed), else nil.
    func localFile(_ descriptor: Descriptor) -> String?
    /// Streams the blob into a new file at `path`, verifying digest and size (nothing is left on a mismatch).
    func download(_ descriptor: Descriptor, to path: String) async throws
}

/// Somewhere images are written to: the store, a registry repository, an archive being assembled.
public protocol BlobSink: Sendable {
    /// Whether the sink already has this blob, manifest or index (then it is not written again).
    func has(_ descriptor: Descriptor) async throws -> Bool
    /// Writes a config or layer, taking its bytes from `source` (a local file when it has one).
    func putBlob(_ descriptor: Descriptor, from source: any BlobSource) async throws
    /// Writes a manifest or index by digest; everything it references is already there.
    func putManifest(_ descriptor: Descriptor, data: Data) async throws
    /// Points `tag` at a complete image (called last).
    func tag(_ descriptor: Descriptor, data: Data, as tag: String) async throws
}

/// A sink where artifacts about an image (SBOMs, provenance) can be found from the image: OCI 1.1's
/// referrers. A registry repository indexes them itself (the referrers API) or through the fallback tag.
public protocol ReferrerSink: BlobSink {
    /// Makes `artifacts`, already written with `putManifest`, findable as referrers of `subject`. Idempotent:
    /// artifacts already findable are not added again.
    func addReferrers(_ artifacts: [Descriptor], of subject: Digest) async throws
}

/// A source where artifacts about an image (SBOMs, provenance) can be found from the image: OCI 1.1's
/// referrers, the reading side of `ReferrerSink`. The store lists its untagged artifact entries; a registry
/// repository answers through the referrers API or the fallback tag.
public protocol ReferrerSource: BlobSource {
    /// The referrers of `subject` with their `artifactType`, empty when there are none.
    func referrers(of subject: Digest) async throws -> [Descriptor]
}

extension BlobSource {
    /// The blob as a local file: the source's own, or a temporary copy under `directory` (returned as `owned`,
    /// for the caller to delete).
    public func materialize(_ descriptor: Descriptor, in directory: String) async throws -> (
        path: String, owned: Bool
    ) {
        if let path = localFile(descriptor) { return (path, false) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = "\(directory)/blob-\(getpid())-\(UUID().uuidString.lowercased())"
        try await download(descriptor, to: path)
        return (path, true)
    }
}

/// What one copy did.
public struct CopyResult: Sendable {
    public var graph: ImageGraph
    /// Blobs the sink lacked and received.
    public var blobsWritten: Int
    /// Manifests and indexes the sink lacked and received.
    public var manifestsWritten: Int
}

/// Copies the image graph under `root` from a source to a sink: `copyImages` with one image.
@discardableResult
public func copyImage(
    _ root: Descriptor, from source: any BlobSource, to sink: any BlobSink, tags: [String] = [], jobs: Int = 4
) async throws -> CopyResult {
    try await copyImages([CopyTarget(root, to: sink, place: "", tags: tags)], from: source, jobs: jobs)[0]
}

/// One image of a copy: its root, the sink it goes to, and its tags. `place` names the sink (a registry
/// repository): targets with the same place share what is written there.
public struct CopyTarget: Sendable {
    public var root: Descriptor
    public var sink: any BlobSink
    public var place: String
    public var tags: [String]

    public init(_ root: Descriptor, to sink: any BlobSink, place: String, tags: [String] = []) {
        self.root = root
        self.sink = sink
        self.place = place
        self.tags = tags
    }
}

/// Copies several image graphs from one source as one graph (go-containerregistry's `MultiWrite`): every graph
/// is walked first; each distinct blob is written once, to the first place that needs it, largest first; each
/// other place that needs it follows as soon as that write is done (a sink that is a registry repository mounts
/// it from there); a place's manifests go as soon as every blob it needs is in, bottom-up (children before the
/// index that lists them); and tags last, once every manifest of every image is in, so a tag never names
/// something incomplete. All of it runs as one set of jobs, at most `jobs` at once (`Bounded.forEach(after:)`):
/// nothing waits for a phase to end, so the small images of a fleet go up beside its largest blob instead of
/// after it. `committed(index, graph)`, when given, runs as a job of its own once target `index`'s manifests
/// are in (beside the tags, which wait for every image): what follows an image (its referrers) goes up beside
/// the rest of the fleet too. Idempotent: what a sink has is skipped. Results are in the order of `targets`.
public func copyImages(
    _ targets: [CopyTarget], from source: any BlobSource, jobs: Int = 4,
    committed: (@Sendable (Int, ImageGraph) async throws -> Void)? = nil
) async throws -> [CopyResult] {
    var walked: [ImageGraph] = []
    for target in targets {
        walked.append(
            try await ImageGraph.walk(target.root) { descriptor in
                guard let data = try await source.document(descriptor) else {
                    throw GraphCopyError.absent(descriptor.digest, source.location)
                }
                return data
            })
    }
    let graphs = walked
    let work = CopyWork(targets: targets, graphs: graphs, committed: committed != nil)
    let written = Mutex([Int](repeating: 0, count: targets.count))
    let manifests = Mutex([Int](repeating: 0, count: targets.count))
    // Blobs whose first write found them absent, and places that received a blob, in this copy.
    let fresh = Mutex((blobs: Set<Digest>(), places: Set<String>()))
    try await Bounded.forEach(after: work.after, limit: jobs) { job in
        switch work.jobs[job] {
        case .blob(let index, let blob, let first):
            let sink = targets[index].sink
            // A blob its first place lacked is taken as new to every place: the other places write it (a
            // registry mounts it) without asking first, one request instead of two. Were it there after all,
            // writing it again changes nothing.
            let new = !first && fresh.withLock { $0.blobs.contains(blob.digest) }
            if !new, try await sink.has(blob) { return }
            try await sink.putBlob(blob, from: source)
            written.withLock { $0[index] += 1 }
            fresh.withLock {
                if first { $0.blobs.insert(blob.digest) }
                $0.places.insert(targets[index].place)
            }
        case .manifests(let indexes):
            // Within a place in order: an index after the manifests it lists, each written once. A place that
            // lacked a blob lacks the manifests naming it: they are written without asking first.
            let new = fresh.withLock { $0.places.contains(targets[indexes[0]].place) }
            var done = Set<Digest>()
            for index in indexes {
                for node in graphs[index].nodes where done.insert(node.descriptor.digest).inserted {
                    if !new, try await targets[index].sink.has(node.descriptor) { continue }
                    try await targets[index].sink.putManifest(node.descriptor, data: node.data)
                    manifests.withLock { $0[index] += 1 }
                }
            }
        case .committed(let index):
            try await committed?(index, graphs[index])
        case .tags(let index):
            guard let top = graphs[index].nodes.last else { return }
            for tag in targets[index].tags {
                try await targets[index].sink.tag(targets[index].root, data: top.data, as: tag)
            }
        }
    }
    let (blobCounts, manifestCounts) = (written.withLock { $0 }, manifests.withLock { $0 })
    return graphs.indices.map {
        CopyResult(graph: graphs[$0], blobsWritten: blobCounts[$0], manifestsWritten: manifestCounts[$0])
    }
}

/// The jobs of `copyImages` and what each waits for, in priority order: the first write of each distinct blob
/// (largest first: the longest transfer starts at once and the rest fit beside it), the other places of each
/// blob (after its first write, which they mount from), each place's manifests (after every blob of the
/// place), then each image's `committed` job (after its place's manifests) and its tags (after every place's
/// manifests).
struct CopyWork {
    enum Job {
        /// Writes a config or layer to the sink of a target.
        case blob(Int, Descriptor, first: Bool)
        /// Writes the manifests of every target at one place (target indexes, in order).
        case manifests([Int])
        /// What follows a target once its manifests are in (`copyImages`'s `committed`).
        case committed(Int)
        /// Points the tags of a target at its root.
        case tags(Int)
    }
    var jobs: [Job] = []
    var after: [[Int]] = []

    init(targets: [CopyTarget], graphs: [ImageGraph], committed: Bool = false) {
        // Each (place, blob) once; the first place a blob is needed in writes it, the others follow.
        var first: [(target: Int, blob: Descriptor)] = []
        var rest: [(target: Int, blob: Descriptor)] = []
        var placed = Set<String>()
        var seen = Set<Digest>()
        for (index, graph) in graphs.enumerated() {
            for blob in graph.blobs.map(\.descriptor)
            where placed.insert("\(targets[index].place) \(blob.digest)").inserted {
                if seen.insert(blob.digest).inserted {
                    first.append((index, blob))
                } else {
                    rest.append((index, blob))
                }
            }
        }
        // Largest first; equal sizes keep the order the graphs name them in.
        first = first.enumerated().sorted {
            ($0.element.blob.size, -$0.offset) > ($1.element.blob.size, -$1.offset)
        }.map(\.element)
        var firstJob: [Digest: Int] = [:]
        var blobJobs: [String: [Int]] = [:]
        for (target, blob) in first {
            firstJob[blob.digest] = add(.blob(target, blob, first: true), after: [])
            blobJobs[targets[target].place, default: []].append(jobs.count - 1)
        }
        for (target, blob) in rest {
            add(.blob(target, blob, first: false), after: firstJob[blob.digest].map { [$0] } ?? [])
            blobJobs[targets[target].place, default: []].append(jobs.count - 1)
        }
        var placeOrder: [String] = []
        var byPlace: [String: [Int]] = [:]
        for index in targets.indices {
            if byPlace[targets[index].place] == nil { placeOrder.append(targets[index].place) }
            byPlace[targets[index].place, default: []].append(index)
        }
        var manifestJob: [String: Int] = [:]
        for place in placeOrder {
            manifestJob[place] = add(.manifests(byPlace[place] ?? []), after: blobJobs[place] ?? [])
        }
        if committed {
            for index in targets.indices { add(.committed(index), after: [manifestJob[targets[index].place] ?? 0]) }
        }
        let manifestJobs = placeOrder.compactMap { manifestJob[$0] }
        for index in targets.indices { add(.tags(index), after: manifestJobs) }
    }

    @discardableResult
    mutating func add(_ job: Job, after earlier: [Int]) -> Int {
        jobs.append(job)
        after.append(earlier)
        return jobs.count - 1
    }
}

/// A document the graph names that its source does not have.
public enum GraphCopyError: Error, CustomStringConvertible {
    case absent(Digest, String)

    public var description: String {
        switch self {
        case .absent(let digest, let location):
            return "\(location) has no manifest \(digest), which the image needs"
        }
    }
}
