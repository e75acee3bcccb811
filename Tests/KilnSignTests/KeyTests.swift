import Foundation
import KilnOCI
import KilnTestSupport
import Testing

@testable import KilnSign

/// Keys in cosign's format: Kiln's own round trip, and keys made by an independent implementation.
@Suite struct KeyTests {
    /// Made by Debian 13's skopeo 1.18 (`skopeo generate-sigstore-key --output-prefix sk --passphrase-file F`,
    /// password `secretpw`): its containers/image writes scrypt N = 65536 and the older PEM type.
    static let skopeoPrivateKey = """
        -----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
        eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6
        OCwicCI6MX0sInNhbHQiOiI3eGpPbU9vbHFtcGlSNStJZ1ZVUnNnMFVkQmZyTXZp
        Z29Cblh2WDhsc25BPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
        Iiwibm9uY2UiOiJuT3lWM05ROHV3dXpjTVc5aVpsb2tuV0libkRBaCs4OSJ9LCJj
        aXBoZXJ0ZXh0IjoiQnFtRUg0ZjNwT0dOb3gyTmdYcVNrdEJjeXVwWmV3N3FxUGJY
        WWxFR05mOXh1elVhelhZc1JxdUlZTm5hN3orSjM0TFhqTG4yS2s2WHZzbU12WXI0
        VXdRclhsUHVmWm5CWHczUXJOWTBSbUpiWjBSQ2FycER0Ynhxc2s4NUFhVzJBQlY5
        b3BObnlHVmw5NThLbzd1VFpjUG5SREc2Vk1UNk1LN2tuRCttVm9RT0pydG8xcE1x
        MFo1aG5IU3BldENSSmdDWlExNWc4aXpzRFE9PSJ9
        -----END ENCRYPTED COSIGN PRIVATE KEY-----
        """
    static let skopeoPublicKey = """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE51l8LhI5fn4a3dfH9k0yoauSsU+G
        k8n176Ma4OY1W9c4/xEJ53I+yf2kleX2oiDuVHPCErSLQW+RVVK8UGgNNQ==
        -----END PUBLIC KEY-----
        """

    static func hex(_ text: String) -> [UInt8] { Hex.decode(text)! }

    @Test func scryptMatchesRFC7914() throws {
        // RFC 7914 section 12, third vector.
        let key = try LibCrypto.scrypt(
            password: Array("password".utf8), salt: Array("NaCl".utf8), n: 1024, r: 8, p: 16, length: 32)
        #expect(key == Self.hex("fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"))
    }

    @Test func secretboxMatchesLibsodium() throws {
        // Sealed by libsodium 1.0.18's crypto_secretbox_easy (an independent XSalsa20-Poly1305).
        let key = Array(0..<32).map(UInt8.init)
        let nonce = Array(100..<124).map(UInt8.init)
        let message = Array(
            "Kiln secretbox known answer: the quick brown fox jumps over the lazy dog, twice over the lazy dog.".utf8)
        let expected = Self.hex(
            "399e678bfb451cc8efd3e88b5ccfc0ee49d0f5a71ac5ab8ac29857f658fc837350c54fc9c4c72568d16930ae2affa1ed"
                + "881e81712c5cbb868779600c2075b21de1fadb7562f5193075842124afdafb442fea3614e85827ed95af6b8529a0"
                + "88b33be1e875878b1367b2f7e85d01c681a99de7")
        #expect(try SecretBox.seal(message, nonce: nonce, key: key) == expected)
        #expect(try SecretBox.open(expected, nonce: nonce, key: key) == message)
        var altered = expected
        altered[40] ^= 1
        #expect(try SecretBox.open(altered, nonce: nonce, key: key) == nil)
    }

    @Test func roundTripSignAndVerify() throws {
        let key = try PrivateKey.generate()
        let sealed = try EncryptedKey.seal(key, password: Array("hunter2".utf8))
        #expect(sealed.hasPrefix("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"))
        let opened = try EncryptedKey.open(sealed, password: Array("hunter2".utf8), path: "test.key")
        #expect(try opened.pkcs8() == key.pkcs8())
        let message = Array("payload".utf8)
        let signature = try opened.sign(message)
        let publicKey = try PublicKey(pkix: PEM.decode(try key.publicKey().pem)!.bytes)
        #expect(publicKey.verify(signature: signature, message: message))
        #expect(!publicKey.verify(signature: signature, message: Array("payloaD".utf8)))
        #expect(!(try PrivateKey.generate().publicKey()).verify(signature: signature, message: message))
    }

    @Test func wrongPasswordIsRefused() throws {
        let sealed = try EncryptedKey.seal(try PrivateKey.generate(), password: Array("right".utf8))
        #expect(throws: SignError.wrongPassword(path: "k.key")) {
            try EncryptedKey.open(sealed, password: Array("wrong".utf8), path: "k.key")
        }
        #expect(throws: SignError.wrongPassword(path: "k.key")) {
            try EncryptedKey.open(sealed, password: [], path: "k.key")
        }
    }

    @Test func readsSkopeoKeys() throws {
        let key = try EncryptedKey.open(Self.skopeoPrivateKey, password: Array("secretpw".utf8), path: "sk.private")
        let publicKey = try PublicKey(pkix: PEM.decode(Self.skopeoPublicKey)!.bytes)
        #expect(try key.publicKey().der == publicKey.der)
        let message = Array("kiln".utf8)
        #expect(publicKey.verify(signature: try key.sign(message), message: message))
        #expect(throws: SignError.wrongPassword(path: "sk.private")) {
            try EncryptedKey.open(Self.skopeoPrivateKey, password: Array("secretPW".utf8), path: "sk.private")
        }
    }

    @Test func refusesOtherFormatsAndHostileParameters() throws {
        #expect(throws: SignError.self) {
            try EncryptedKey.open(PEM.encode([1, 2, 3], type: "PRIVATE KEY"), password: [], path: "p")
        }
        // scrypt parameters that would take gigabytes of memory are refused before any work.
        let sealed = try EncryptedKey.seal(try PrivateKey.generate(), password: [])
        var json = String(decoding: Data(PEM.decode(sealed)!.bytes), as: UTF8.self)
        json = json.replacingOccurrences(of: "\"N\":32768", with: "\"N\":1073741824")
        let hostile = PEM.encode(Array(json.utf8), type: EncryptedKey.pemType)
        #expect(throws: SignError.self) { try EncryptedKey.open(hostile, password: [], path: "p") }
    }

    @Test func keyFilesAreWrittenOnceAndPrivately() async throws {
        try await withTemporaryDirectory("kiln-keys") { directory in
            let written = try KeyFiles.generate(prefix: directory.path + "/release", password: Array("pw".utf8))
            let mode = try FileManager.default.attributesOfItem(atPath: written.privateKey)[.posixPermissions] as? Int
            #expect(mode == 0o600)
            let key = try EncryptedKey.load(path: written.privateKey, password: Array("pw".utf8))
            #expect(try key.publicKey().der == PublicKey.load(path: written.publicKey).der)
            #expect(throws: SignError.keyExists(path: written.privateKey)) {
                try KeyFiles.generate(prefix: directory.path + "/release", password: [])
            }
        }
    }

    /// Both key files are read by one reader: each names the file and what it found.
    @Test func keyFilesOfTheWrongKindAreRefusedByName() async throws {
        try await withTemporaryDirectory("kiln-keys") { directory in
            let written = try KeyFiles.generate(prefix: directory.path + "/release", password: [])
            let wrongKind = SignError.badKey(
                path: written.privateKey,
                reason: "a 'ENCRYPTED SIGSTORE PRIVATE KEY' PEM block; Kiln reads 'PUBLIC KEY'")
            #expect(throws: wrongKind) { try PublicKey.load(path: written.privateKey) }
            #expect(
                throws: SignError.badKey(
                    path: written.publicKey,
                    reason:
                        "a 'PUBLIC KEY' PEM block; Kiln reads 'ENCRYPTED SIGSTORE PRIVATE KEY' or 'ENCRYPTED COSIGN PRIVATE KEY'"
                )
            ) { try EncryptedKey.load(path: written.publicKey, password: []) }
            let missing = directory.path + "/missing.pub"
            #expect(throws: SignError.badKey(path: missing, reason: "cannot read it")) {
                try PublicKey.load(path: missing)
            }
            let empty = try directory.write("empty.pub", "not a key\n")
            #expect(throws: SignError.badKey(path: empty, reason: "no '-----BEGIN PUBLIC KEY-----' PEM block")) {
                try PublicKey.load(path: empty)
            }
        }
    }

    @Test func simpleSigningPayloadIsWhatContainersImageParses() throws {
        let digest = Digest.sha256("image")
        let payload = SimpleSigningPayload(dockerReference: "r.example/a/b:1", digest: digest)
        let object = try JSONSerialization.jsonObject(with: try payload.encoded()) as! [String: Any]
        #expect(Set(object.keys) == ["critical", "optional"])
        let critical = object["critical"] as! [String: Any]
        #expect(Set(critical.keys) == ["identity", "image", "type"])
        #expect((critical["image"] as! [String: String]) == ["docker-manifest-digest": digest.description])
        #expect(try SimpleSigningPayload.parse(try payload.encoded()).critical == payload.critical)
        // containers/image writes a number in `optional`; it parses.
        let theirs = Data(
            #"{"critical":{"identity":{"docker-reference":"x/y"},"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature"},"optional":{"creator":"c/image","timestamp":1}}"#
                .utf8)
        #expect(try SimpleSigningPayload.parse(theirs).critical.identity.dockerReference == "x/y")
    }
}
