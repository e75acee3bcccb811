import Foundation
import KilnOCI

/// Docker v2 schema 2 documents rewritten with OCI media types when they enter the store, as skopeo and crane
/// do when they write a layout: every OCI reader (skopeo `oci:`, umoci, podman) then reads any pulled image,
/// and an image built on a pulled base carries OCI layer types only. Configs and layers keep their bytes (the
/// two formats agree on them); only manifests and indexes change, and so do their digests. The digest the
/// registry published stays findable through the tag's `dev.kiln.source.digest` annotation.
public enum OCIConversion {
    /// index.json annotation on a pulled image's entry: the digest the registry served (before conversion).
    public static let sourceDigestKey = "dev.kiln.source.digest"
    /// index.json annotation on a pulled image's entry: the reference it was pulled from.
    public static let sourceReferenceKey = "dev.kiln.source.reference"

    /// OCI media types for the docker ones a manifest names (others are kept).
    static let blobTypes: [String: String] = [
        MediaType.dockerConfig: MediaType.imageConfig,
        MediaType.dockerLayerGzip: MediaType.layerGzip,
        "application/vnd.docker.image.rootfs.diff.tar": MediaType.layerTar,
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    ]

    /// Rewrites the graph under `root` (already stored) with OCI media types, stores the new documents, and
    /// returns the new root's descriptor (`root` itself when nothing was docker). Children are converted before
    /// the index that lists them, so an index names its converted children's digests.
    public static func toOCI(_ root: Descriptor, in layout: OCILayout) throws -> Descriptor {
        let graph = try layout.graph(from: root)
        var converted: [Digest: Descriptor] = [:]
        for node in graph.nodes {
            let data: Data?
            switch node.kind {
            case .manifest: data = try manifest(node)
            case .index: data = try index(node, converted: converted)
            case .blob: data = nil
            }
            guard let data else { continue }
            try layout.writeBlob(data)
            var descriptor = node.descriptor
            descriptor.mediaType = node.kind == .index ? MediaType.imageIndex : MediaType.imageManifest
            descriptor.digest = .sha256(data)
            descriptor.size = Int64(data.count)
            converted[node.descriptor.digest] = descriptor
        }
        guard var result = converted[root.digest] else { return root }
        result.annotations = root.annotations
        return result
    }

    /// The OCI bytes of a docker manifest, or nil when it is OCI already.
    static func manifest(_ node: ImageGraph.Node) throws -> Data? {
        var manifest = try CanonicalJSON.decode(Manifest.self, from: node.data)
        guard manifest.mediaType == MediaType.dockerManifest || node.descriptor.mediaType == MediaType.dockerManifest
        else { return nil }
        manifest.mediaType = MediaType.imageManifest
        manifest.config.mediaType = blobTypes[manifest.config.mediaType] ?? manifest.config.mediaType
        for i in manifest.layers.indices {
            manifest.layers[i].mediaType = blobTypes[manifest.layers[i].mediaType] ?? manifest.layers[i].mediaType
        }
        return try CanonicalJSON.encode(manifest)
    }

    /// The OCI bytes of a manifest list, or of an index whose children changed; nil when nothing changes.
    static func index(_ node: ImageGraph.Node, converted: [Digest: Descriptor]) throws -> Data? {
        var index = try CanonicalJSON.decode(ImageIndex.self, from: node.data)
        let docker =
            index.mediaType == MediaType.dockerManifestList || node.descriptor.mediaType == MediaType.dockerManifestList
        var changed = false
        for i in index.manifests.indices {
            guard let new = converted[index.manifests[i].digest] else { continue }
            index.manifests[i].mediaType = new.mediaType
            index.manifests[i].digest = new.digest
            index.manifests[i].size = new.size
            changed = true
        }
        guard docker || changed else { return nil }
        if docker { index.mediaType = MediaType.imageIndex }
        return try CanonicalJSON.encode(index)
    }
}

extension OCILayout {
    /// The stored image for a digest a recipe pins (`base: REGISTRY/NAME:TAG@sha256:…`): the tag entry whose
    /// `dev.kiln.source.digest` is that digest (a pulled docker image, stored converted), else the document
    /// stored under the digest itself. Nil when the store has neither.
    public func pinnedImage(_ digest: Digest) throws -> Descriptor? {
        if let entry = try index().manifests.first(where: {
            $0.annotations?[OCIConversion.sourceDigestKey] == digest.description
        }), hasBlob(entry.digest) {
            var descriptor = entry
            descriptor.annotations = nil
            return descriptor
        }
        guard hasBlob(digest) else { return nil }
        struct Probe: Decodable {
            var mediaType: String?
            var manifests: [Descriptor]?
        }
        let data = try readBlob(digest)
        let probe = try? JSONDecoder().decode(Probe.self, from: data)
        let type = probe?.mediaType ?? (probe?.manifests != nil ? MediaType.imageIndex : MediaType.imageManifest)
        return Descriptor(mediaType: type, digest: digest, size: Int64(data.count))
    }
}

extension OCILayout {
    /// A pinned base that an older Kiln stored as the registry served it (docker media types, no
    /// `dev.kiln.source.digest` entry): stored again converted and tagged `tag` with the published digest
    /// recorded, so images built on it carry OCI media types only. Nothing happens when an entry already
    /// records the digest. Returns whether it converted.
    @discardableResult
    public func convertPinnedBase(_ digest: Digest, tag: String) throws -> Bool {
        guard
            !(try index().manifests.contains { $0.annotations?[OCIConversion.sourceDigestKey] == digest.description }),
            let stored = try pinnedImage(digest)
        else { return false }
        var converted = try OCIConversion.toOCI(stored, in: self)
        // Recorded even when nothing changed, so later builds skip the walk.
        converted.annotations = [OCIConversion.sourceDigestKey: digest.description]
        try self.tag(converted, as: tag)
        return converted.digest != digest
    }
}
