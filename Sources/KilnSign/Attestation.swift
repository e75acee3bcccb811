import Foundation
import KilnOCI
import KilnRegistry

/// DSSE (Dead Simple Signing Envelope, secure-systems-lab/dsse `envelope.md` and `protocol.md`): the payload
/// and its type, and signatures over the pre-authentication encoding
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body` (lengths in ASCII decimal).
public struct DSSEEnvelope: Codable, Sendable, Equatable {
    public static let inTotoPayloadType = "application/vnd.in-toto+json"

    public struct Signature: Codable, Sendable, Equatable {
        public var keyid: String
        public var sig: String
    }

    public var payloadType: String
    /// Standard base64 of the payload bytes.
    public var payload: String
    public var signatures: [Signature]

    public static func pae(type: String, body: Data) -> [UInt8] {
        Array("DSSEv1 \(type.utf8.count) \(type) \(body.count) ".utf8) + [UInt8](body)
    }

    /// An envelope of `body`, signed with `key` when given (an unsigned envelope has no signatures).
    public init(payloadType: String = Self.inTotoPayloadType, body: Data, key: PrivateKey?) throws {
        self.payloadType = payloadType
        payload = body.base64EncodedString()
        signatures = []
        if let key {
            signatures.append(
                Signature(
                    keyid: "", sig: Data(try key.sign(Self.pae(type: payloadType, body: body))).base64EncodedString()))
        }
    }

    public var body: Data? { Data(base64Encoded: payload) }

    /// Whether one of the signatures verifies under one of `keys`.
    public func verified(by keys: [PublicKey]) -> PublicKey? {
        guard let body else { return nil }
        let message = Self.pae(type: payloadType, body: body)
        for signature in signatures {
            guard let bytes = Data(base64Encoded: signature.sig) else { continue }
            if let key = keys.first(where: { $0.verify(signature: [UInt8](bytes), message: message) }) { return key }
        }
        return nil
    }
}

/// An in-toto attestation Statement v1 (in-toto/attestation `spec/v1/statement.md`).
public struct InTotoStatement<Predicate: Codable & Sendable>: Codable, Sendable {
    public static var statementType: String { "https://in-toto.io/Statement/v1" }

    public struct Subject: Codable, Sendable, Equatable {
        public var name: String
        public var digest: [String: String]
        public init(name: String, digest: Digest) {
            self.name = name
            self.digest = [digest.algorithm: digest.encoded]
        }
    }

    public var type: String
    public var subject: [Subject]
    public var predicateType: String
    public var predicate: Predicate

    enum CodingKeys: String, CodingKey {
        case type = "_type"
        case subject, predicateType, predicate
    }

    public init(subject: [Subject], predicateType: String, predicate: Predicate) {
        type = Self.statementType
        self.subject = subject
        self.predicateType = predicateType
        self.predicate = predicate
    }
}

/// An in-toto ResourceDescriptor (`spec/v1/resource_descriptor.md`): what SLSA lists as dependencies.
public struct ResourceDescriptor: Codable, Sendable, Equatable {
    public var name: String?
    public var uri: String?
    public var digest: [String: String]?
    public var annotations: [String: String]?

    public init(
        name: String? = nil, uri: String? = nil, digest: [String: String]? = nil, annotations: [String: String]? = nil
    ) {
        self.name = name
        self.uri = uri
        self.digest = digest
        self.annotations = annotations
    }
}

/// The SLSA provenance v1 predicate (slsa.dev/spec/v1.0/provenance), with the build type's own external
/// parameters.
public struct SLSAProvenance<ExternalParameters: Codable & Sendable>: Codable, Sendable {
    public static var predicateType: String { "https://slsa.dev/provenance/v1" }

    public struct BuildDefinition: Codable, Sendable {
        public var buildType: String
        public var externalParameters: ExternalParameters
        public var resolvedDependencies: [ResourceDescriptor]
    }
    public struct Builder: Codable, Sendable {
        public var id: String
        public var version: [String: String]
    }
    public struct Metadata: Codable, Sendable {
        public var invocationId: String?
        public var startedOn: String?
        public var finishedOn: String?
    }
    public struct RunDetails: Codable, Sendable {
        public var builder: Builder
        public var metadata: Metadata?
    }

    public var buildDefinition: BuildDefinition
    public var runDetails: RunDetails

    public init(
        buildType: String, externalParameters: ExternalParameters, resolvedDependencies: [ResourceDescriptor],
        builderID: String, builderVersion: [String: String], metadata: Metadata? = nil
    ) {
        buildDefinition = BuildDefinition(
            buildType: buildType, externalParameters: externalParameters, resolvedDependencies: resolvedDependencies)
        runDetails = RunDetails(builder: Builder(id: builderID, version: builderVersion), metadata: metadata)
    }
}

/// Attaches in-toto statements to images in cosign's `.att` layout (ATTESTATION_SPEC): under the tag
/// `sha256-<hex>.att`, one layer per attestation, the DSSE envelope with media type
/// `application/vnd.dsse.envelope.v1+json`, annotated with the predicate type and an empty
/// `dev.cosignproject.cosign/signature` (the signature is inside the envelope).
public struct AttestationPublisher: Sendable {
    public let client: RegistryClient
    public let key: PrivateKey?

    public init(client: RegistryClient, key: PrivateKey?) {
        self.client = client
        self.key = key
    }

    /// On an attestation layer Kiln wrote: sha256 of the statement, and the signing key's id (or `none`).
    public static let statementAnnotation = "dev.kiln.statement.digest"
    public static let keyAnnotation = "dev.kiln.key"

    /// Attaches `statement` (its canonical JSON) to `subject` in `repository`. Returns whether a layer was added
    /// (an identical unsigned envelope, or one of the same statement this key signed, is not added again).
    @discardableResult
    public func attach(statement: Data, predicateType: String, to subject: Descriptor, in repository: String)
        async throws -> Bool
    {
        let envelope = try DSSEEnvelope(body: statement, key: key)
        let data = try CanonicalJSON.encode(envelope)
        // Kiln's annotations say which statement and which key, so attaching again adds nothing (an ECDSA
        // signature differs every time, so the envelopes' digests do not tell).
        let statementDigest = Digest.sha256(statement).description
        let keyID = try key?.publicKey().keyID.description ?? "none"
        let (_, added) = try await Attachments(client: client).append(
            [
                .init(
                    data: data, mediaType: CosignLayout.dsseMediaType,
                    annotations: [
                        CosignLayout.signatureAnnotation: "", CosignLayout.predicateTypeAnnotation: predicateType,
                        Self.statementAnnotation: statementDigest, Self.keyAnnotation: keyID,
                    ])
            ], to: subject, in: repository, kind: .attestation,
            alreadyThere: { layer, _ in
                layer.mediaType == CosignLayout.dsseMediaType
                    && layer.annotations?[Self.statementAnnotation] == statementDigest
                    && layer.annotations?[Self.keyAnnotation] == keyID
            })
        return added > 0
    }

    /// The statements attached to `subject` whose envelope verifies under `keys` (every envelope when `keys`
    /// is empty), as JSON bytes, with the key that verified each.
    public func statements(of subject: Digest, in repository: String, keys: [PublicKey]) async throws -> [(
        statement: Data, predicateType: String?, key: PublicKey?
    )] {
        let attachments = Attachments(client: client)
        guard let manifest = try await attachments.manifest(repository, subject, .attestation) else { return [] }
        var found: [(Data, String?, PublicKey?)] = []
        for layer in manifest.layers where layer.mediaType == CosignLayout.dsseMediaType {
            let data = try await attachments.blob(repository, layer)
            guard let envelope = try? JSONDecoder().decode(DSSEEnvelope.self, from: data), let body = envelope.body
            else { continue }
            let key = envelope.verified(by: keys)
            if !keys.isEmpty && key == nil { continue }
            found.append((body, layer.annotations?[CosignLayout.predicateTypeAnnotation], key))
        }
        return found
    }
}
