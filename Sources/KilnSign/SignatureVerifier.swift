import Foundation
import KilnOCI
import KilnRegistry
import KilnStore

/// Checks cosign signatures (`sha256-<hex>.sig`) of an image against public keys, as cosign's `verify --key`
/// and containers/image's `sigstoreSigned` policy do: a signature counts when it verifies under one of the
/// keys over the payload bytes, the payload is a cosign simple-signing document, and it names the manifest's
/// digest. Like cosign, the signed `docker-reference` is reported, not enforced (a promoted image keeps the
/// identity it was signed with). Signatures by cosign or skopeo with a compatible key count the same.
public struct SignatureVerifier: Sendable {
    /// A registry, or the store (the attachments a pull kept).
    enum Source: Sendable {
        case registry(RegistryClient)
        case store(OCILayout)
    }
    let source: Source
    public let keys: [PublicKey]
    /// Whether each image manifest must also carry a build provenance attestation verified by the keys
    /// (`ProvenanceCheck`); an index has none of its own (each platform manifest is attested).
    public let provenance: Bool

    public init(client: RegistryClient, keys: [PublicKey], provenance: Bool = false) {
        source = .registry(client)
        self.keys = keys
        self.provenance = provenance
    }

    /// Checks images in the store, with the signatures and attestations `kiln pull` kept.
    public init(layout: OCILayout, keys: [PublicKey], provenance: Bool = false) {
        source = .store(layout)
        self.keys = keys
        self.provenance = provenance
    }

    public enum Status: String, Codable, Sendable {
        /// At least one signature verifies.
        case valid
        /// Signatures are there, none verifies (another key, altered payload, another image's digest).
        case invalid
        /// No signature at all.
        case missing
    }

    /// The verdict for one manifest.
    public struct Check: Codable, Sendable {
        public var digest: Digest
        public var mediaType: String
        public var platform: String?
        public var status: Status
        /// Signatures found (simple-signing layers of the `.sig` manifest).
        public var signatureCount: Int
        /// The identity a valid signature names, and the key id (sha256 of the PKIX DER) that verified it.
        public var identity: String?
        public var keyID: Digest?
        /// Why signatures did not count, one line each.
        public var problems: [String]
        /// The build provenance attestation's verdict, when it was checked (image manifests, with `provenance`).
        public var provenance: Status?
        /// Why no attestation counted, one line each.
        public var provenanceProblems: [String]?

        /// Whether this manifest passes: a valid signature, and a valid attestation where one was checked.
        var passes: Bool { status == .valid && (provenance ?? .valid) == .valid }
    }

    public struct Report: Codable, Sendable {
        public var reference: String
        public var digest: Digest
        public var verified: Bool
        /// The manifest `reference` names first, then each platform manifest of an index.
        public var manifests: [Check]
        public var note: String?

        public var text: String {
            var lines = [
                verified
                    ? "OK \(reference): signed (\(digest))"
                    : "NOT VERIFIED \(reference) (\(digest))"
            ]
            for check in manifests {
                let what = check.platform.map { "  \($0) \(check.digest)" } ?? "  \(check.digest)"
                var line = "\(what): \(check.status.rawValue)"
                if let identity = check.identity { line += " for \(identity)" }
                if let keyID = check.keyID { line += " by key \(keyID.encoded.prefix(12))" }
                if let provenance = check.provenance { line += "; provenance: \(provenance.rawValue)" }
                lines.append(line)
                lines += (check.problems + (check.provenanceProblems ?? [])).map { "    " + $0 }
            }
            if let note { lines.append(note) }
            return lines.joined(separator: "\n")
        }
    }

    /// Verifies `reference` (and each manifest of an index). Verified when the top manifest has a valid
    /// signature and no platform manifest has only invalid ones; a platform manifest without any signature is
    /// covered by the index's (the index's digest fixes each platform's digest) and only noted, as cosign
    /// verifies an index. (containers/image checks the manifest it copies: a pull of one platform needs that
    /// platform's signature, which is why `ImageSigner` signs both.) With `provenance`, every image manifest
    /// (each platform of an index) must also have a valid provenance attestation: one index-wide attestation
    /// cannot say what each platform was built from.
    public func verify(_ reference: Reference) async throws -> Report {
        guard case .registry(let client) = source else {
            throw SignError.malformed("\(reference) names a registry; this verifier reads the store")
        }
        let (data, descriptor) = try await client.manifest(reference.repository, reference.identifier)
        return try await report(
            reference.description, data, descriptor,
            reader: RegistryAttachments(client: client, repository: reference.repository))
    }

    /// Verifies the store's image `name` (`NAME:TAG`) as `verify` does a registry's.
    public func verify(stored name: String) async throws -> Report {
        guard case .store(let layout) = source else {
            throw SignError.malformed("\(name) names an image in the store; this verifier reads a registry")
        }
        var descriptor = try layout.resolve(name)
        descriptor.annotations = nil
        return try await report(
            name, try layout.readBlob(descriptor.digest), descriptor, reader: StoredAttachments(layout: layout))
    }

    /// The checks of the manifest `descriptor` (its bytes `data`) and, for an index, of each manifest it lists.
    func report(_ name: String, _ data: Data, _ descriptor: Descriptor, reader: any AttachmentReader) async throws
        -> Report
    {
        var checks = [try await check(descriptor, reader: reader)]
        if MediaType.indexTypes.contains(descriptor.mediaType) {
            let index = try JSONDecoder().decode(ImageIndex.self, from: data)
            for child in index.manifests where MediaType.manifestTypes.contains(child.mediaType) {
                var result = try await check(child, reader: reader)
                result.platform = child.platform?.description
                checks.append(result)
            }
        }
        let verified =
            checks[0].passes
            && !checks.dropFirst().contains { $0.status == .invalid || ($0.provenance ?? .valid) != .valid }
        let unsigned = checks.dropFirst().filter { $0.status == .missing }.count
        return Report(
            reference: name, digest: descriptor.digest, verified: verified, manifests: checks,
            note: unsigned > 0 && verified
                ? "\(unsigned) platform manifest(s) have no signature of their own: the index's signature covers "
                    + "them, but podman and skopeo check the platform manifest they pull (kiln sign signs both)"
                : nil)
    }

    /// The verdict for one manifest, its attachments read by `reader`.
    func check(_ manifest: Descriptor, reader: any AttachmentReader) async throws -> Check {
        var result = Check(
            digest: manifest.digest, mediaType: manifest.mediaType, status: .missing, signatureCount: 0, problems: [])
        guard let signatures = try await reader.attachment(manifest.digest, .signature) else {
            result.problems.append(
                "no signature: \(reader.place):\(CosignLayout.tag(manifest.digest, .signature)) does not exist")
            return try await withProvenance(result, reader: reader)
        }
        for layer in signatures.layers where layer.mediaType == CosignLayout.simpleSigningMediaType {
            result.signatureCount += 1
            let short = layer.digest.encoded.prefix(12)
            guard let encoded = layer.annotations?[CosignLayout.signatureAnnotation],
                let signature = Data(base64Encoded: encoded)
            else {
                result.problems.append("payload \(short): no \(CosignLayout.signatureAnnotation) annotation")
                continue
            }
            let payload: Data
            do { payload = try await reader.payload(layer) } catch {
                result.problems.append("payload \(short): \(error)")
                continue
            }
            guard let key = keys.first(where: { $0.verify(signature: [UInt8](signature), message: [UInt8](payload)) })
            else {
                result.problems.append(
                    "payload \(short): the signature does not verify under the given key(s) (another key, or altered bytes)"
                )
                continue
            }
            let parsed: SimpleSigningPayload
            do { parsed = try SimpleSigningPayload.parse(payload) } catch {
                result.problems.append("payload \(short): \(error)")
                continue
            }
            guard parsed.critical.image.dockerManifestDigest == manifest.digest.description else {
                result.problems.append(
                    "payload \(short): signed for \(parsed.critical.image.dockerManifestDigest), not this manifest")
                continue
            }
            result.status = .valid
            result.identity = parsed.critical.identity.dockerReference
            result.keyID = key.keyID
            result.problems = []
            return try await withProvenance(result, reader: reader)
        }
        result.status = result.signatureCount == 0 ? .missing : .invalid
        if result.signatureCount == 0 { result.problems.append("the .sig manifest holds no simple-signing payload") }
        return try await withProvenance(result, reader: reader)
    }

    /// `result` with its provenance verdict, for an image manifest when `provenance` is asked for.
    func withProvenance(_ result: Check, reader: any AttachmentReader) async throws -> Check {
        guard provenance, MediaType.manifestTypes.contains(result.mediaType) else { return result }
        var checked = result
        let (status, problems) = try await ProvenanceCheck(reader: reader, keys: keys).check(result.digest)
        checked.provenance = status
        checked.provenanceProblems = problems.isEmpty ? nil : problems
        return checked
    }
}
