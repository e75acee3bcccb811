import Foundation
import KilnOCI

/// The image graph reachable from one root: index → manifests → config and layers.
///
/// This is the only place that decides what a document is (an index, a manifest, or an opaque blob) and what
/// it references; every walk (copy, pull, push, export, the release completeness check, garbage collection,
/// `images`) is a short loop around `ImageGraph.Builder`, which asks for one document at a time. The loop
/// fetches (from disk, synchronously, or from a registry, asynchronously), so one set of rules serves both.
public struct ImageGraph: Sendable {
    public enum Kind: Sendable, Equatable {
        /// Lists other manifests (an OCI index or a docker manifest list).
        case index
        /// One image (or artifact): a config and layers.
        case manifest
        /// Content the graph does not look into (configs, layers, unknown documents).
        case blob
    }

    /// A manifest or index of the graph with its exact bytes.
    public struct Node: Sendable {
        /// The descriptor that first reached it (an index child keeps its platform).
        public var descriptor: Descriptor
        public var data: Data
        public var kind: Kind
        /// The platform of the index entry that reached it, for messages ("side linux/arm64").
        public var path: String
    }

    /// A config or layer with the role it plays, for messages ("config", "layer 2").
    public struct Blob: Sendable {
        public var descriptor: Descriptor
        public var role: String
        /// The `path` of the manifest that first named it.
        public var owner: String
    }

    public var root: Descriptor
    /// Manifests and indexes, children before parents (the order to write them in: bottom-up).
    public var nodes: [Node]
    /// Configs and layers, each once, in first-seen order.
    public var blobs: [Blob]
    /// Manifests the walk could not read (absent from the source), with where they were expected.
    public var absent: [(descriptor: Descriptor, path: String)]
    /// `subject` links of manifests: kept alive by garbage collection, never copied with the graph.
    public var subjects: Set<Digest>

    /// Every digest the graph reaches: manifests, configs, layers, subjects (and absent manifests).
    public var digests: Set<Digest> {
        Set(nodes.map(\.descriptor.digest)).union(blobs.map(\.descriptor.digest)).union(
            absent.map(\.descriptor.digest)
        ).union(subjects).union([root.digest])
    }

    /// The single-platform images of the graph, in the order the index lists them.
    public var manifests: [Node] { nodes.filter { $0.kind == .manifest } }

    /// What a document is. The media type decides; a document whose media type is missing or generic is probed
    /// (an index lists `manifests`, a manifest has `layers`), as registries do not always label them.
    public static func kind(of descriptor: Descriptor, data: Data?) -> Kind {
        struct Probe: Decodable {
            var manifests: [Descriptor]?
            var layers: [Descriptor]?
            var config: Descriptor?
        }
        let probe = data.flatMap { try? JSONDecoder().decode(Probe.self, from: $0) }
        // A document that lists manifests and no layers is an index, whatever it was labelled.
        if let probe, probe.manifests != nil, probe.layers == nil { return .index }
        if MediaType.indexTypes.contains(descriptor.mediaType) { return .index }
        if MediaType.manifestTypes.contains(descriptor.mediaType) { return .manifest }
        if let probe, probe.layers != nil, probe.config != nil { return .manifest }
        return .blob
    }

    /// Whether a descriptor names a document the walk reads (rather than a blob it only lists).
    public static func isDocument(_ descriptor: Descriptor) -> Bool {
        MediaType.indexTypes.contains(descriptor.mediaType) || MediaType.manifestTypes.contains(descriptor.mediaType)
    }

    /// Builds a graph one fetched document at a time:
    ///
    ///     var builder = ImageGraph.Builder(root)
    ///     while let next = builder.next() { try builder.add(next, data: fetch(next)) }
    ///     let graph = try builder.finish()
    ///
    /// `data: nil` records the document as absent (its children are not walked).
    public struct Builder: Sendable {
        private var graph: ImageGraph
        private var pending: [(Descriptor, String)]
        private var seen: Set<Digest>
        private var seenBlobs: Set<Digest> = []
        private var children: [Digest: [Digest]] = [:]
        private var byDigest: [Digest: Node] = [:]

        public init(_ root: Descriptor) {
            graph = ImageGraph(root: root, nodes: [], blobs: [], absent: [], subjects: [])
            pending = [(root, "")]
            seen = [root.digest]
        }

        /// The next document to fetch, or nil when the walk is complete.
        public mutating func next() -> Descriptor? { pending.first?.0 }

        /// Records the bytes of the document `next()` returned.
        public mutating func add(_ descriptor: Descriptor, data: Data?) throws {
            guard let index = pending.firstIndex(where: { $0.0.digest == descriptor.digest }) else { return }
            let (descriptor, path) = pending.remove(at: index)
            guard let data else {
                graph.absent.append((descriptor, path))
                return
            }
            let kind = ImageGraph.kind(of: descriptor, data: data)
            var node = Node(descriptor: descriptor, data: data, kind: kind, path: path)
            switch kind {
            case .index:
                let index = try Self.decode(ImageIndex.self, data, descriptor)
                if let subject = index.subject { graph.subjects.insert(subject.digest) }
                for child in index.manifests {
                    children[descriptor.digest, default: []].append(child.digest)
                    let childPath = [path, child.platform?.description ?? "child"].filter { !$0.isEmpty }
                        .joined(separator: " ")
                    if ImageGraph.isDocument(child) {
                        if seen.insert(child.digest).inserted { pending.append((child, childPath)) }
                    } else if seenBlobs.insert(child.digest).inserted {
                        graph.blobs.append(Blob(descriptor: child, role: "entry", owner: childPath))
                    }
                }
            case .manifest:
                let manifest = try Self.decode(Manifest.self, data, descriptor)
                if let subject = manifest.subject { graph.subjects.insert(subject.digest) }
                let named = [("config", manifest.config)] + manifest.layers.enumerated().map { ("layer \($0)", $1) }
                for (role, blob) in named where seenBlobs.insert(blob.digest).inserted {
                    graph.blobs.append(Blob(descriptor: blob, role: role, owner: path))
                }
            case .blob:
                // A root that is not a document (a lone blob): nothing to walk.
                node.kind = .blob
            }
            if kind != .blob { byDigest[descriptor.digest] = node }
        }

        /// The graph, with documents ordered children first.
        public func finish() -> ImageGraph {
            var result = graph
            var placed = Set<Digest>()
            func place(_ digest: Digest) {
                guard let node = byDigest[digest], placed.insert(digest).inserted else { return }
                for child in children[digest] ?? [] { place(child) }
                result.nodes.append(node)
            }
            place(graph.root.digest)
            return result
        }

        static func decode<T: Decodable>(_ type: T.Type, _ data: Data, _ descriptor: Descriptor) throws -> T {
            // Located and worded (`line 1, column 210 (layers[0].digest): …`), never Foundation's DecodingError text.
            do {
                return try CanonicalJSON.decode(type, from: data, path: descriptor.digest.description)
            } catch let error as JSONDocumentError {
                throw GraphError.malformed(
                    digest: descriptor.digest, mediaType: descriptor.mediaType, detail: error.reason)
            } catch {
                throw GraphError.malformed(
                    digest: descriptor.digest, mediaType: descriptor.mediaType, detail: "\(error)")
            }
        }
    }

    /// Walks the graph from `root`, fetching each document with `fetch` (nil: absent).
    public static func walk(_ root: Descriptor, fetch: (Descriptor) throws -> Data?) throws -> ImageGraph {
        var builder = Builder(root)
        while let next = builder.next() { try builder.add(next, data: fetch(next)) }
        return builder.finish()
    }

    /// Walks the graph from `root`, fetching each document with `fetch` (nil: absent).
    public static func walk(_ root: Descriptor, fetch: (Descriptor) async throws -> Data?) async throws -> ImageGraph {
        var builder = Builder(root)
        while let next = builder.next() { try builder.add(next, data: try await fetch(next)) }
        return builder.finish()
    }
}

/// A document of the graph that cannot be read as what its media type says.
public enum GraphError: Error, CustomStringConvertible {
    case malformed(digest: Digest, mediaType: String, detail: String)

    public var description: String {
        switch self {
        case .malformed(let digest, let mediaType, let detail):
            return "\(digest) is not a valid \(mediaType): \(detail)"
        }
    }
}
