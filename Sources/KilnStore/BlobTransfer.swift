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

/// Copies the image graph under `root` from a source to a sink: walk once (index → manifests → config and
/// layers), copy each blob the sink lacks once with `jobs` workers, write manifests bottom-up (children
/// before the index that lists them), and tag last, so a tag never names something incomplete.
/// Idempotent: what the sink has is skipped.
@discardableResult
public func copyImage(
    _ root: Descriptor, from source: any BlobSource, to sink: any BlobSink, tags: [String] = [], jobs: Int = 4
) async throws -> CopyResult {
    let graph = try await ImageGraph.walk(root) { descriptor in
        guard let data = try await source.document(descriptor) else {
            throw GraphCopyError.absent(descriptor.digest, source.location)
        }
        return data
    }
    let written = Mutex(0)
    try await Bounded.forEach(graph.blobs.map(\.descriptor), limit: jobs) { blob in
        guard try await !sink.has(blob) else { return }
        try await sink.putBlob(blob, from: source)
        written.withLock { $0 += 1 }
    }
    var manifests = 0
    for node in graph.nodes where try await !sink.has(node.descriptor) {
        try await sink.putManifest(node.descriptor, data: node.data)
        manifests += 1
    }
    if let top = graph.nodes.last {
        for tag in tags { try await sink.tag(root, data: top.data, as: tag) }
    }
    return CopyResult(graph: graph, blobsWritten: written.withLock { $0 }, manifestsWritten: manifests)
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
