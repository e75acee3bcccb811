import Foundation
import KilnOCI

/// Where cosign keeps what it attaches to an image (SIGNATURE_SPEC "Tag-based Discovery"): in the image's
/// repository, under the tag `sha256-<hex>.sig` (signatures) or `.att` (attestations) of the manifest digest,
/// an OCI image manifest whose layers are the payloads, each with its signature in a layer annotation.
public enum CosignLayout {
    public static let simpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
    public static let dsseMediaType = "application/vnd.dsse.envelope.v1+json"
    public static let signatureAnnotation = "dev.cosignproject.cosign/signature"
    /// On an attestation layer: the in-toto predicate type inside (cosign writes it so verifiers can filter).
    public static let predicateTypeAnnotation = "predicateType"
    /// Payloads larger than this are not fetched (c/image's limit for signatures is 4 MiB too).
    public static let payloadLimit: Int64 = 4 << 20

    public enum Kind: String, Sendable {
        case signature = "sig"
        case attestation = "att"
    }

    public static func tag(_ digest: Digest, _ kind: Kind) -> String {
        "\(digest.algorithm)-\(digest.encoded).\(kind.rawValue)"
    }
}

/// The simple-signing payload cosign and containers/image sign (containers-signature(5), with cosign's type):
/// `{"critical":{"identity":{"docker-reference":…},"image":{"docker-manifest-digest":…},"type":"cosign container
/// image signature"},"optional":{…}}`. containers/image insists on exactly `critical` and `optional` at the top
/// and exactly those three members in `critical`.
public struct SimpleSigningPayload: Codable, Equatable, Sendable {
    public static let type = "cosign container image signature"

    public struct Critical: Codable, Equatable, Sendable {
        public struct Identity: Codable, Equatable, Sendable {
            public var dockerReference: String
            enum CodingKeys: String, CodingKey { case dockerReference = "docker-reference" }
        }
        public struct Image: Codable, Equatable, Sendable {
            public var dockerManifestDigest: String
            enum CodingKeys: String, CodingKey { case dockerManifestDigest = "docker-manifest-digest" }
        }
        public var identity: Identity
        public var image: Image
        public var type: String
    }

    public var critical: Critical
    /// cosign writes `null` when there are no annotations; Kiln writes its name as the creator.
    public var optional: [String: String]?

    public init(dockerReference: String, digest: Digest, creator: String? = "kiln \(KilnVersion.current)") {
        critical = Critical(
            identity: .init(dockerReference: dockerReference), image: .init(dockerManifestDigest: digest.description),
            type: Self.type)
        optional = creator.map { ["creator": $0] } ?? [:]
    }

    /// Canonical bytes (sorted keys, no escaped slashes): the same payload for the same image and identity.
    public func encoded() throws -> Data { try CanonicalJSON.encode(self) }

    /// Parses a payload; `optional` may hold anything (containers/image writes a number as `timestamp`), so
    /// only `critical` is decoded strictly.
    public static func parse(_ data: Data) throws -> SimpleSigningPayload {
        struct Loose: Decodable { var critical: Critical }
        guard let loose = try? JSONDecoder().decode(Loose.self, from: data) else {
            throw SignError.malformed("the signed payload is not a simple-signing document")
        }
        guard loose.critical.type == type else {
            throw SignError.malformed("the signed payload's type is '\(loose.critical.type)', not '\(type)'")
        }
        var payload = SimpleSigningPayload(
            dockerReference: loose.critical.identity.dockerReference, digest: Digest.sha256(Data()), creator: nil)
        payload.critical = loose.critical
        payload.optional = nil
        return payload
    }
}
