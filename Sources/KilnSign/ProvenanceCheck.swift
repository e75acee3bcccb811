import Foundation
import KilnOCI
import KilnRegistry

/// The check `kiln verify --key` makes of an image manifest's build provenance, beside its signatures: the
/// manifest's cosign `.att` attachment must hold a DSSE envelope that verifies under one of the keys, whose
/// payload is an in-toto Statement with the SLSA provenance v1 predicate and names this manifest's digest as
/// its subject. A signature proves who published the bytes; the attestation proves what they were built from,
/// and the subject check stops a valid attestation of another image from being copied onto this one.
struct ProvenanceCheck: Sendable {
    let reader: any AttachmentReader
    let keys: [PublicKey]

    /// The parts of a statement the check reads.
    struct Statement: Decodable {
        var type: String
        var subject: [InTotoStatement<EmptyObject>.Subject]
        var predicateType: String
        enum CodingKeys: String, CodingKey {
            case type = "_type"
            case subject, predicateType
        }
    }

    /// The verdict and why, for one image manifest.
    func check(_ manifest: Digest) async throws -> (
        status: SignatureVerifier.Status, problems: [String]
    ) {
        let predicateType = SLSAProvenance<EmptyObject>.predicateType
        guard let attached = try await reader.attachment(manifest, .attestation) else {
            return (
                .missing,
                [
                    "no provenance attestation: \(reader.place):\(CosignLayout.tag(manifest, .attestation)) "
                        + "does not exist (signed but not attested: release it with --sign-key)"
                ]
            )
        }
        var problems: [String] = []
        var envelopes = 0
        for layer in attached.layers where layer.mediaType == CosignLayout.dsseMediaType {
            let short = layer.digest.encoded.prefix(12)
            let data: Data
            do { data = try await reader.payload(layer) } catch {
                problems.append("attestation \(short): \(error)")
                continue
            }
            guard let envelope = try? JSONDecoder().decode(DSSEEnvelope.self, from: data), let body = envelope.body,
                envelope.payloadType == DSSEEnvelope.inTotoPayloadType,
                let statement = try? JSONDecoder().decode(Statement.self, from: body),
                statement.type == InTotoStatement<EmptyObject>.statementType
            else {
                problems.append("attestation \(short): not a DSSE envelope of an in-toto statement")
                continue
            }
            // Other predicates (an SBOM attestation, say) are not the provenance: skipped, not counted.
            guard statement.predicateType == predicateType else { continue }
            envelopes += 1
            guard envelope.verified(by: keys) != nil else {
                problems.append(
                    "attestation \(short): "
                        + (envelope.signatures.isEmpty
                            ? "the envelope is not signed"
                            : "the envelope's signature does not verify under the given key(s) (another key, or altered bytes)")
                )
                continue
            }
            let named = statement.subject.compactMap { $0.digest[manifest.algorithm] }
            guard named.contains(manifest.encoded) else {
                problems.append(
                    "attestation \(short): the statement's subject is "
                        + (named.isEmpty
                            ? "no \(manifest.algorithm) digest"
                            : named.map { "\(manifest.algorithm):\($0)" }
                                .joined(separator: ", "))
                        + ", not this manifest")
                continue
            }
            return (.valid, [])
        }
        guard envelopes > 0 else {
            return (.missing, problems + ["no \(predicateType) attestation among the .att's layers"])
        }
        return (.invalid, problems)
    }
}
