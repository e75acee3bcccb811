import Foundation
import KilnOCI
import KilnRegistry

/// Checks cosign signatures (`sha256-<hex>.sig`) of an image against public keys, as cosign's `verify --key`
/// and containers/image's `sigstoreSigned` policy do: a signature counts when it verifies under one of the
/// keys over the payload bytes, the payload is a cosign simple-signing document, and it names the manifest's
/// digest. Like cosign, the signed `docker-reference` is reported, not enforced (a promoted image keeps the
/// identity it was signed with). Signatures by cosign or skopeo with a compatible key count the same.
public struct SignatureVerifier: Sendable {
    public let client: RegistryClient
    public let keys: [PublicKey]
    /// Whether each image manifest must also carry a build provenance attestation verified by the keys
    /// (`ProvenanceCheck`); an index has none of its own (each platform manifest is attested).
    public let provenance: Bool

    public init(client: RegistryClient, keys: [PublicKey], provenance: Bool = false) {
        self.client = client
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
        let repository = reference.repository
        let (data, descriptor) = try await client.manifest(repository, reference.identifier)
        var checks = [try await check(descriptor, in: repository)]
        if MediaType.indexTypes.contains(descriptor.mediaType) {
            let index = try JSONDecoder().decode(ImageIndex.self, from: data)
            for child in index.manifests where MediaType.manifestTypes.contains(child.mediaType) {
                var result = try await check(child, in: repository)
                result.platform = child.platform?.description
                checks.append(result)
            }
        }
        let verified =
            checks[0].passes
            && !checks.dropFirst().contains { $0.status == .invalid || ($0.provenance ?? .valid) != .valid }
        let unsigned = checks.dropFirst().filter { $0.status == .missing }.count
        return Report(
            reference: reference.description, digest: descriptor.digest, verified: verified, manifests: checks,
            note: unsigned > 0 && verified
                ? "\(unsigned) platform manifest(s) have no signature of their own: the index's signature covers "
                    + "them, but podman and skopeo check the platform manifest they pull (kiln sign signs both)"
                : nil)
    }

    /// The verdict for one manifest of `repository`.
    public func check(_ manifest: Descriptor, in repository: String) async throws -> Check {
        var result = Check(
            digest: manifest.digest, mediaType: manifest.mediaType, status: .missing, signatureCount: 0, problems: [])
        let attachments = Attachments(client: client)
        guard let signatures = try await attachments.manifest(repository, manifest.digest, .signature) else {
            result.problems.append(
                "no signature: \(client.registry)/\(repository):\(CosignLayout.tag(manifest.digest, .signature)) does not exist"
            )
            return try await withProvenance(result, in: repository)
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
            do { payload = try await attachments.blob(repository, layer) } catch {
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
            return try await withProvenance(result, in: repository)
        }
        result.status = result.signatureCount == 0 ? .missing : .invalid
        if result.signatureCount == 0 { result.problems.append("the .sig manifest holds no simple-signing payload") }
        return try await withProvenance(result, in: repository)
    }

    /// `result` with its provenance verdict, for an image manifest when `provenance` is asked for.
    func withProvenance(_ result: Check, in repository: String) async throws -> Check {
        guard provenance, MediaType.manifestTypes.contains(result.mediaType) else { return result }
        var checked = result
        let (status, problems) = try await ProvenanceCheck(attachments: Attachments(client: client), keys: keys)
            .check(result.digest, in: repository)
        checked.provenance = status
        checked.provenanceProblems = problems.isEmpty ? nil : problems
        return checked
    }
}
