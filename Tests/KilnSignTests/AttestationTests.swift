import Foundation
import KilnOCI
import Testing

@testable import KilnSign

/// DSSE envelopes and in-toto statements, without a registry.
@Suite struct AttestationTests {
    @Test func preAuthenticationEncodingIsTheSpecsExample() {
        // secure-systems-lab/dsse protocol.md: PAE("http://example.com/HelloWorld", "hello world").
        let pae = DSSEEnvelope.pae(type: "http://example.com/HelloWorld", body: Data("hello world".utf8))
        #expect(String(decoding: pae, as: UTF8.self) == "DSSEv1 29 http://example.com/HelloWorld 11 hello world")
        // Lengths count bytes, not characters.
        let utf8 = DSSEEnvelope.pae(type: "t", body: Data("é".utf8))
        #expect(String(decoding: utf8, as: UTF8.self) == "DSSEv1 1 t 2 é")
    }

    @Test func envelopeSignsAndVerifiesThePayload() throws {
        let key = try PrivateKey.generate()
        let other = try PrivateKey.generate()
        let body = Data(#"{"_type":"https://in-toto.io/Statement/v1"}"#.utf8)
        let envelope = try DSSEEnvelope(body: body, key: key)
        #expect(envelope.payloadType == "application/vnd.in-toto+json")
        #expect(envelope.body == body && envelope.signatures.count == 1)
        #expect(envelope.verified(by: [try other.publicKey(), try key.publicKey()])?.der == (try key.publicKey()).der)
        #expect(envelope.verified(by: [try other.publicKey()]) == nil)
        // A changed payload or payload type no longer verifies.
        var altered = envelope
        altered.payload = Data(#"{"_type":"x"}"#.utf8).base64EncodedString()
        #expect(altered.verified(by: [try key.publicKey()]) == nil)
        altered = envelope
        altered.payloadType = "application/json"
        #expect(altered.verified(by: [try key.publicKey()]) == nil)
        // Without a key: an unsigned envelope.
        #expect(try DSSEEnvelope(body: body, key: nil).signatures.isEmpty)
    }

    @Test func statementEncodesTheInTotoFieldNames() throws {
        struct Parameters: Codable, Sendable { var image: String }
        let statement = InTotoStatement(
            subject: [.init(name: "app", digest: Digest.sha256("x"))], predicateType: "https://slsa.dev/provenance/v1",
            predicate: SLSAProvenance(
                buildType: "urn:t", externalParameters: Parameters(image: "app"), resolvedDependencies: [],
                builderID: "urn:b", builderVersion: ["kiln": "1"]))
        let object = try JSONSerialization.jsonObject(with: try CanonicalJSON.encode(statement)) as! [String: Any]
        #expect(object["_type"] as? String == "https://in-toto.io/Statement/v1")
        #expect(((object["subject"] as! [[String: Any]])[0]["digest"] as! [String: String]).keys.first == "sha256")
        let predicate = object["predicate"] as! [String: Any]
        #expect((predicate["buildDefinition"] as! [String: Any])["buildType"] as? String == "urn:t")
        #expect(
            ((predicate["runDetails"] as! [String: Any])["builder"] as! [String: Any])["id"] as? String == "urn:b")
    }
}
