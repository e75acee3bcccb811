import Foundation
import KilnOCI
import KilnRegistry
import KilnStore

/// Where the verifier reads a manifest's cosign attachments (`.sig`, `.att`): a registry repository, or the
/// store, which keeps those of a pulled image (`CosignAttachments`). The checks are the same either way.
protocol AttachmentReader: Sendable {
    /// Where the attachments are, for messages: `REGISTRY/REPOSITORY` or the store's path.
    var place: String { get }
    /// The attachment manifest of `subject`, or nil when there is none.
    func attachment(_ subject: Digest, _ kind: CosignLayout.Kind) async throws -> Manifest?
    /// A payload's bytes (digest and size checked), refused above `CosignLayout.payloadLimit`.
    func payload(_ descriptor: Descriptor) async throws -> Data
}

/// A repository's attachments, under their tags.
struct RegistryAttachments: AttachmentReader {
    let attachments: Attachments
    let repository: String

    init(client: RegistryClient, repository: String) {
        attachments = Attachments(client: client)
        self.repository = repository
    }

    var place: String { "\(attachments.client.registry)/\(repository)" }

    func attachment(_ subject: Digest, _ kind: CosignLayout.Kind) async throws -> Manifest? {
        try await attachments.manifest(repository, subject, kind)
    }

    func payload(_ descriptor: Descriptor) async throws -> Data {
        try await attachments.blob(repository, descriptor)
    }
}

/// The attachments a pull stored: index.json entries annotated with their tag.
struct StoredAttachments: AttachmentReader {
    let layout: OCILayout

    var place: String { layout.root }

    func attachment(_ subject: Digest, _ kind: CosignLayout.Kind) async throws -> Manifest? {
        let tag = CosignLayout.tag(subject, kind)
        guard let entry = try layout.index().manifests.last(where: { $0.annotations?[CosignAttachments.tagKey] == tag })
        else { return nil }
        guard let manifest = try? JSONDecoder().decode(Manifest.self, from: try payload(entry)) else {
            throw SignError.malformed("\(layout.root): the entry for \(tag) is not an OCI image manifest")
        }
        return manifest
    }

    func payload(_ descriptor: Descriptor) throws -> Data {
        guard descriptor.size >= 0, descriptor.size <= CosignLayout.payloadLimit else {
            throw SignError.malformed("\(descriptor.digest) is \(descriptor.size) bytes, more than a payload may be")
        }
        let data = try layout.readBlob(descriptor.digest)
        guard Int64(data.count) == descriptor.size, Digest.sha256(data) == descriptor.digest else {
            throw SignError.malformed("\(layout.root): blob \(descriptor.digest) does not match its digest or size")
        }
        return data
    }
}
