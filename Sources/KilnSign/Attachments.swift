import Foundation
import KilnOCI
import KilnRegistry

/// Reads and grows cosign's tag-based attachments (`sha256-<hex>.sig` / `.att`) in a registry repository, the
/// way cosign's `pkg/oci/mutate` and containers/image do: the attachment is an OCI image manifest with an
/// image config whose `rootfs.diff_ids` list the payloads, and one layer per payload. Adding a payload fetches
/// the current manifest, appends, uploads the new blobs and re-tags. The manifest also names the signed image
/// as its `subject`, so a registry with the OCI referrers API lists it there too.
struct Attachments: Sendable {
    let client: RegistryClient

    /// One payload to attach: its bytes, media type and layer annotations.
    struct Payload: Sendable {
        var data: Data
        var mediaType: String
        var annotations: [String: String]
    }

    /// The attachment manifest of `subject`, or nil when there is none.
    func manifest(_ repository: String, _ subject: Digest, _ kind: CosignLayout.Kind) async throws -> Manifest? {
        let tag = CosignLayout.tag(subject, kind)
        guard try await client.manifestDescriptor(repository, tag) != nil else { return nil }
        let (data, _) = try await client.manifest(repository, tag)
        guard let manifest = try? JSONDecoder().decode(Manifest.self, from: data) else {
            throw SignError.malformed("\(client.registry)/\(repository):\(tag) is not an OCI image manifest")
        }
        return manifest
    }

    /// A small blob's bytes (digest and size verified), refused above `limit`.
    func blob(_ repository: String, _ descriptor: Descriptor, limit: Int64 = CosignLayout.payloadLimit) async throws
        -> Data
    {
        guard descriptor.size >= 0, descriptor.size <= limit else {
            throw SignError.malformed("\(descriptor.digest) is \(descriptor.size) bytes, more than a payload may be")
        }
        let path = FileManager.default.temporaryDirectory.path + "/kiln-payload-\(UUID().uuidString.lowercased())"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await client.downloadBlob(repository, descriptor, to: path)
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    /// Uploads bytes as a blob unless the repository has it.
    func put(_ repository: String, _ data: Data) async throws -> Digest {
        let digest = Digest.sha256(data)
        if try await client.blobSize(repository, digest) != nil { return digest }
        let path = FileManager.default.temporaryDirectory.path + "/kiln-blob-\(UUID().uuidString.lowercased())"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try data.write(to: URL(fileURLWithPath: path))
        try await client.uploadBlob(repository, digest: digest, size: Int64(data.count), path: path)
        return digest
    }

    /// Appends the payloads `alreadyThere` does not find among the layers, and re-tags. Returns the new
    /// attachment manifest's descriptor and how many payloads were added (0: nothing was written, no descriptor).
    func append(
        _ payloads: [Payload], to subject: Descriptor, in repository: String, kind: CosignLayout.Kind,
        alreadyThere: (Descriptor, Payload) -> Bool
    ) async throws -> (descriptor: Descriptor?, added: Int) {
        let current = try await manifest(repository, subject.digest, kind)
        var layers = current?.layers ?? []
        var added = 0
        for payload in payloads {
            if layers.contains(where: { alreadyThere($0, payload) }) { continue }
            let digest = try await put(repository, payload.data)
            layers.append(
                Descriptor(
                    mediaType: payload.mediaType, digest: digest, size: Int64(payload.data.count),
                    annotations: payload.annotations.isEmpty ? nil : payload.annotations))
            added += 1
        }
        guard added > 0 else { return (nil, 0) }
        let config = try CanonicalJSON.encode(AttachmentConfig(diffIDs: layers.map(\.digest)))
        let configDigest = try await put(repository, config)
        var subjectDescriptor = Descriptor(mediaType: subject.mediaType, digest: subject.digest, size: subject.size)
        subjectDescriptor.platform = nil
        let manifest = Manifest(
            config: Descriptor(mediaType: MediaType.imageConfig, digest: configDigest, size: Int64(config.count)),
            layers: layers, subject: subjectDescriptor)
        let data = try CanonicalJSON.encode(manifest)
        try await client.putManifest(
            repository, CosignLayout.tag(subject.digest, kind), data: data, mediaType: MediaType.imageManifest)
        return (Descriptor(mediaType: MediaType.imageManifest, bytes: data), added)
    }
}

/// The image config of an attachment manifest, as containers/image writes it: empty but for the payloads as
/// `rootfs.diff_ids`.
struct AttachmentConfig: Codable {
    struct RootFS: Codable {
        var type = "layers"
        var diffIDs: [Digest]
        enum CodingKeys: String, CodingKey {
            case type
            case diffIDs = "diff_ids"
        }
    }
    var architecture = ""
    var os = ""
    var config = EmptyObject()
    var rootfs: RootFS

    init(diffIDs: [Digest]) { rootfs = RootFS(diffIDs: diffIDs) }
}
