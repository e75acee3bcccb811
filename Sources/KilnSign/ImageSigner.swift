import Foundation
import KilnOCI
import KilnRegistry

/// Signs images in a registry the way cosign does with a key (SIGNATURE_SPEC): for each manifest digest a
/// simple-signing payload, its ECDSA P-256 SHA-256 signature in the layer annotation
/// `dev.cosignproject.cosign/signature`, attached under the tag `sha256-<hex>.sig`. An index is signed, and
/// so is each of its manifests (a pull by a platform's digest finds a signature too). Signing again with the
/// same key adds nothing: the payload is deterministic and an existing layer that verifies is kept.
public struct ImageSigner: Sendable {
    public let client: RegistryClient
    public let key: PrivateKey
    public let publicKey: PublicKey

    public init(client: RegistryClient, key: PrivateKey) throws {
        self.client = client
        self.key = key
        self.publicKey = try key.publicKey()
    }

    /// One signed manifest.
    public struct Signed: Codable, Sendable, Equatable {
        /// `REGISTRY/REPOSITORY@sha256:…` of the signed manifest.
        public var reference: String
        public var digest: Digest
        public var mediaType: String
        public var platform: String?
        /// The identity the payload names (`critical.identity.docker-reference`).
        public var identity: String
        /// `REGISTRY/REPOSITORY:sha256-<hex>.sig`
        public var signatureTag: String
        /// False when an equal signature by this key was already there.
        public var added: Bool
    }

    /// Signs what `reference` names (and, for an index, each manifest it lists). The identity signed is
    /// `REGISTRY/REPOSITORY:TAG` when the reference has a tag, else `REGISTRY/REPOSITORY`, for the platform
    /// manifests too: containers/image checks the platform manifest it pulls, and its default
    /// `matchRepoDigestOrExact` wants the tag in the identity for a pull by tag (a pull by digest needs only the
    /// repository).
    public func sign(_ reference: Reference) async throws -> [Signed] {
        let repository = reference.repository
        let (data, descriptor) = try await client.manifest(repository, reference.identifier)
        let name = "\(reference.registry)/\(repository)"
        let identity = reference.tag.map { "\(name):\($0)" } ?? name
        var signed = [try await sign(descriptor, in: repository, identity: identity)]
        if MediaType.indexTypes.contains(descriptor.mediaType) {
            let index = try JSONDecoder().decode(ImageIndex.self, from: data)
            for child in index.manifests where MediaType.manifestTypes.contains(child.mediaType) {
                var result = try await sign(child, in: repository, identity: identity)
                result.platform = child.platform?.description
                signed.append(result)
            }
        }
        return signed
    }

    /// Signs one manifest (by its descriptor) in `repository` for `identity`.
    public func sign(_ manifest: Descriptor, in repository: String, identity: String) async throws -> Signed {
        let payload = try SimpleSigningPayload(dockerReference: identity, digest: manifest.digest).encoded()
        let signature = Data(try key.sign([UInt8](payload))).base64EncodedString()
        let publicKey = self.publicKey
        let (_, added) = try await Attachments(client: client).append(
            [
                .init(
                    data: payload, mediaType: CosignLayout.simpleSigningMediaType,
                    annotations: [CosignLayout.signatureAnnotation: signature])
            ], to: manifest, in: repository, kind: .signature,
            alreadyThere: { layer, new in
                guard layer.mediaType == new.mediaType, layer.digest == Digest.sha256(new.data),
                    let existing = layer.annotations?[CosignLayout.signatureAnnotation],
                    let bytes = Data(base64Encoded: existing)
                else { return false }
                return publicKey.verify(signature: [UInt8](bytes), message: [UInt8](new.data))
            })
        return Signed(
            reference: "\(client.registry)/\(repository)@\(manifest.digest)", digest: manifest.digest,
            mediaType: manifest.mediaType, identity: identity,
            signatureTag: "\(client.registry)/\(repository):\(CosignLayout.tag(manifest.digest, .signature))",
            added: added > 0)
    }
}
