import CCrypto
import Foundation
import KilnOCI
import KilnStore

/// An ECDSA P-256 private key (the only kind cosign's default and skopeo's sigstore signing use).
/// @unchecked: OpaquePointer is not Sendable, but the EVP_PKEY is never mutated after init and OpenSSL allows
/// concurrent signing with one key (each call makes its own context).
public final class PrivateKey: @unchecked Sendable {
    /// The EVP_PKEY; never mutated after init, so sharing across threads is safe.
    let key: OpaquePointer

    init(owning key: OpaquePointer) {
        self.key = key
    }

    deinit { EVP_PKEY_free(key) }

    /// A new random P-256 key.
    public static func generate() throws -> PrivateKey {
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "EC", nil) else { throw LibCrypto.lastError("EC keys") }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_CTX_set_group_name(context, "P-256") == 1,
            EVP_PKEY_generate(context, &key) == 1, let key
        else { throw LibCrypto.lastError("generating a P-256 key") }
        return PrivateKey(owning: key)
    }

    /// A key from PKCS #8 DER (`PrivateKeyInfo`); only ECDSA P-256 is accepted.
    public convenience init(pkcs8 der: [UInt8]) throws {
        let info = LibCrypto.parse(der) { d2i_PKCS8_PRIV_KEY_INFO(nil, $0, $1) }
        guard let info else { throw SignError.malformed("not a PKCS #8 private key") }
        defer { PKCS8_PRIV_KEY_INFO_free(info) }
        guard let key = EVP_PKCS82PKEY(info) else { throw SignError.malformed("not a PKCS #8 private key") }
        guard Self.isP256(key) else {
            EVP_PKEY_free(key)
            throw SignError.malformed("not an ECDSA P-256 key (Kiln signs with P-256, as cosign does by default)")
        }
        self.init(owning: key)
    }

    static func isP256(_ key: OpaquePointer) -> Bool {
        guard EVP_PKEY_is_a(key, "EC") == 1 else { return false }
        var name = [CChar](repeating: 0, count: 64)
        var length = 0
        guard EVP_PKEY_get_group_name(key, &name, name.count, &length) == 1 else { return false }
        let group = String(decoding: name.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return group == "prime256v1" || group == "P-256"
    }

    /// PKCS #8 DER, as cosign encrypts it.
    public func pkcs8() throws -> [UInt8] {
        guard let info = EVP_PKEY2PKCS8(key) else { throw LibCrypto.lastError("encoding the private key") }
        defer { PKCS8_PRIV_KEY_INFO_free(info) }
        return try LibCrypto.der("encoding the private key") { i2d_PKCS8_PRIV_KEY_INFO(info, $0) }
    }

    /// The matching public key.
    public func publicKey() throws -> PublicKey {
        try PublicKey(pkix: try PublicKey.pkix(of: key))
    }

    /// An ASN.1 DER ECDSA signature over SHA-256 of `message` (what cosign puts, base64, in the annotation).
    public func sign(_ message: [UInt8]) throws -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw LibCrypto.lastError("signing") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestSignInit(context, nil, EVP_sha256(), nil, key) == 1 else {
            throw LibCrypto.lastError("signing")
        }
        var length = 0
        guard EVP_DigestSign(context, nil, &length, message, message.count) == 1 else {
            throw LibCrypto.lastError("signing")
        }
        var signature = [UInt8](repeating: 0, count: length)
        guard EVP_DigestSign(context, &signature, &length, message, message.count) == 1 else {
            throw LibCrypto.lastError("signing")
        }
        return Array(signature.prefix(length))
    }
}

/// An ECDSA P-256 public key, read from and written as PKIX (`SubjectPublicKeyInfo`) PEM: cosign.pub.
/// @unchecked: as `PrivateKey`, the EVP_PKEY is never mutated after init; verifying makes its own context.
public final class PublicKey: @unchecked Sendable {
    let key: OpaquePointer
    /// The PKIX DER, which also identifies the key (its SHA-256 is the key id Kiln reports).
    public let der: [UInt8]

    public init(pkix der: [UInt8]) throws {
        let parsed = LibCrypto.parse(der) { d2i_PUBKEY(nil, $0, $1) }
        guard let parsed else { throw SignError.malformed("not a PKIX public key") }
        guard PrivateKey.isP256(parsed) else {
            EVP_PKEY_free(parsed)
            throw SignError.malformed("not an ECDSA P-256 public key")
        }
        key = parsed
        self.der = der
    }

    deinit { EVP_PKEY_free(key) }

    static func pkix(of key: OpaquePointer) throws -> [UInt8] {
        try LibCrypto.der("encoding the public key") { i2d_PUBKEY(key, $0) }
    }

    /// `-----BEGIN PUBLIC KEY-----` PEM.
    public var pem: String { PEM.encode(der, type: Self.pemType) }

    /// sha256 of the PKIX DER: a short, stable name for the key in reports.
    public var keyID: Digest { Digest.sha256(Data(der)) }

    /// Whether `signature` (ASN.1 DER ECDSA) signs SHA-256 of `message` under this key.
    public func verify(signature: [UInt8], message: [UInt8]) -> Bool {
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, EVP_sha256(), nil, key) == 1 else { return false }
        let result = EVP_DigestVerify(context, signature, signature.count, message, message.count)
        ERR_clear_error()
        return result == 1
    }

    public static let pemType = "PUBLIC KEY"

    public static func load(path: String) throws -> PublicKey {
        let bytes = try KeyFiles.block(in: try KeyFiles.text(at: path), types: [pemType], path: path)
        do { return try PublicKey(pkix: bytes) } catch {
            throw SignError.badKey(path: path, reason: "\(error)")
        }
    }
}

/// The private-key file format cosign and skopeo share (sigstore's `encrypted` package): a PEM block
/// `ENCRYPTED SIGSTORE PRIVATE KEY` (older: `ENCRYPTED COSIGN PRIVATE KEY`) whose bytes are the JSON
/// `{"kdf":{"name":"scrypt","params":{"N":…,"r":8,"p":1},"salt":…},"cipher":{"name":"nacl/secretbox","nonce":…},
/// "ciphertext":…}` (byte strings in standard base64): the PKCS #8 DER sealed by NaCl's secretbox under
/// scrypt(password, salt) as the 32-byte key.
public enum EncryptedKey {
    public static let pemType = "ENCRYPTED SIGSTORE PRIVATE KEY"
    public static let legacyPEMType = "ENCRYPTED COSIGN PRIVATE KEY"
    /// What Kiln writes: cosign's parameters (older cosign accepts only these; skopeo 1.18 writes N = 65536).
    public static let scryptN: UInt64 = 32768

    struct Document: Codable {
        struct KDF: Codable {
            struct Params: Codable {
                var N: UInt64
                var r: UInt64
                var p: UInt64
            }
            var name: String
            var params: Params
            var salt: String
        }
        struct Cipher: Codable {
            var name: String
            var nonce: String
        }
        var kdf: KDF
        var cipher: Cipher
        var ciphertext: String
    }

    /// The encrypted PEM text of `key` under `password`.
    public static func seal(_ key: PrivateKey, password: [UInt8]) throws -> String {
        let salt = try LibCrypto.randomBytes(32)
        let nonce = try LibCrypto.randomBytes(SecretBox.nonceSize)
        let boxKey = try LibCrypto.scrypt(password: password, salt: salt, n: scryptN, r: 8, p: 1, length: 32)
        let box = try SecretBox.seal(try key.pkcs8(), nonce: nonce, key: boxKey)
        let document = Document(
            kdf: .init(
                name: "scrypt", params: .init(N: scryptN, r: 8, p: 1), salt: Data(salt).base64EncodedString()),
            cipher: .init(name: "nacl/secretbox", nonce: Data(nonce).base64EncodedString()),
            ciphertext: Data(box).base64EncodedString())
        return PEM.encode([UInt8](try CanonicalJSON.encode(document)), type: pemType)
    }

    /// Opens an encrypted key file's text; `path` names the file in errors.
    public static func open(_ text: String, password: [UInt8], path: String) throws -> PrivateKey {
        let bytes = try KeyFiles.block(in: text, types: [pemType, legacyPEMType], path: path)
        guard let document = try? JSONDecoder().decode(Document.self, from: Data(bytes)) else {
            throw SignError.badKey(path: path, reason: "the encrypted key's JSON is not cosign's")
        }
        guard document.kdf.name == "scrypt", document.cipher.name == "nacl/secretbox" else {
            throw SignError.badKey(
                path: path,
                reason: "kdf '\(document.kdf.name)', cipher '\(document.cipher.name)': "
                    + "only scrypt and nacl/secretbox are known")
        }
        // Bounded, so a crafted file cannot make scrypt take gigabytes: cosign writes N = 32768, skopeo 65536.
        let params = document.kdf.params
        guard params.N >= 1024, params.N <= 1 << 18, params.N & (params.N - 1) == 0, (1...32).contains(params.r),
            (1...16).contains(params.p)
        else {
            throw SignError.badKey(
                path: path, reason: "scrypt parameters N=\(params.N) r=\(params.r) p=\(params.p) refused")
        }
        guard let salt = Data(base64Encoded: document.kdf.salt), let nonce = Data(base64Encoded: document.cipher.nonce),
            let box = Data(base64Encoded: document.ciphertext), nonce.count == SecretBox.nonceSize
        else { throw SignError.badKey(path: path, reason: "bad base64 or nonce size") }
        let boxKey = try LibCrypto.scrypt(
            password: password, salt: [UInt8](salt), n: params.N, r: params.r, p: params.p, length: 32)
        guard let der = try SecretBox.open([UInt8](box), nonce: [UInt8](nonce), key: boxKey) else {
            throw SignError.wrongPassword(path: path)
        }
        do { return try PrivateKey(pkcs8: der) } catch {
            throw SignError.badKey(path: path, reason: "\(error)")
        }
    }

    public static func load(path: String, password: [UInt8]) throws -> PrivateKey {
        try open(try KeyFiles.text(at: path), password: password, path: path)
    }
}
