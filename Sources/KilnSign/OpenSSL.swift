import CCrypto
import Foundation

/// The few libcrypto calls Kiln's signing needs: random bytes, scrypt, Poly1305, and OpenSSL's error queue.
enum LibCrypto {
    /// The last OpenSSL error as text (and the queue cleared), for messages.
    static func lastError(_ what: String) -> SignError {
        var text = ""
        var code = ERR_get_error()
        while code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            code = ERR_get_error()
        }
        return .crypto(text.isEmpty ? what : "\(what): \(text)")
    }

    static func randomBytes(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard RAND_bytes(&bytes, Int32(count)) == 1 else { throw lastError("no random bytes") }
        return bytes
    }

    /// scrypt (RFC 7914) through `EVP_PBE_scrypt`.
    static func scrypt(password: [UInt8], salt: [UInt8], n: UInt64, r: UInt64, p: UInt64, length: Int) throws
        -> [UInt8]
    {
        var key = [UInt8](repeating: 0, count: length)
        // Room for scrypt's 128·r·N bytes of working memory (the parameters are bounded before this call).
        let memory = 128 * r * (n + p + 2) + (1 << 20)
        // An empty password is a null pointer with length 0, which OpenSSL reads as "".
        let status = password.withUnsafeBytes { pass in
            EVP_PBE_scrypt(
                pass.baseAddress?.assumingMemoryBound(to: CChar.self), pass.count, salt, salt.count, n, r, p, memory,
                &key, length)
        }
        guard status == 1 else { throw lastError("scrypt") }
        return key
    }

    /// A one-time Poly1305 tag (16 bytes) of `message` under a 32-byte key.
    static func poly1305(key: [UInt8], message: [UInt8]) throws -> [UInt8] {
        guard let mac = EVP_MAC_fetch(nil, "POLY1305", nil) else { throw lastError("Poly1305 unavailable") }
        defer { EVP_MAC_free(mac) }
        guard let context = EVP_MAC_CTX_new(mac) else { throw lastError("Poly1305") }
        defer { EVP_MAC_CTX_free(context) }
        var tag = [UInt8](repeating: 0, count: 16)
        var length = 0
        guard EVP_MAC_init(context, key, key.count, nil) == 1,
            EVP_MAC_update(context, message, message.count) == 1,
            EVP_MAC_final(context, &tag, &length, tag.count) == 1, length == 16
        else { throw lastError("Poly1305") }
        return tag
    }

    /// The DER an OpenSSL `i2d_*` function writes (`encode(nil)` gives the length, `encode(&cursor)` writes):
    /// one place for the two-call protocol every key encoding follows.
    static func der(_ what: String, _ encode: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?) -> Int32)
        throws -> [UInt8]
    {
        let length = encode(nil)
        guard length > 0 else { throw lastError(what) }
        var der = [UInt8](repeating: 0, count: Int(length))
        let written = der.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            return encode(&cursor)
        }
        guard written == length else { throw lastError(what) }
        return der
    }

    /// What an OpenSSL `d2i_*` function reads from `der` (nil when it is not that structure).
    static func parse<T>(_ der: [UInt8], _ decode: (UnsafeMutablePointer<UnsafePointer<UInt8>?>, Int) -> T?) -> T? {
        der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return decode(&cursor, buffer.count)
        }
    }

    /// Equality of two byte strings that takes the same time wherever they differ (tags are compared so).
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<a.count { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}

/// NaCl's `crypto_secretbox` (XSalsa20-Poly1305), as golang.org/x/crypto/nacl/secretbox seals: the output is
/// the 16-byte Poly1305 tag followed by the ciphertext. The Poly1305 key is the first 32 bytes of the key
/// stream; the message is XORed with the stream from byte 32 on.
enum SecretBox {
    static let keySize = 32
    static let nonceSize = 24
    static let overhead = 16

    static func seal(_ message: [UInt8], nonce: [UInt8], key: [UInt8]) throws -> [UInt8] {
        let stream = Salsa20.xsalsa20Stream(key: key, nonce: nonce, count: 32 + message.count)
        var ciphertext = [UInt8](repeating: 0, count: message.count)
        for i in 0..<message.count { ciphertext[i] = message[i] ^ stream[32 + i] }
        let tag = try LibCrypto.poly1305(key: Array(stream[0..<32]), message: ciphertext)
        return tag + ciphertext
    }

    /// The message, or nil when the tag does not match (wrong key, or altered bytes).
    static func open(_ box: [UInt8], nonce: [UInt8], key: [UInt8]) throws -> [UInt8]? {
        guard box.count >= overhead, nonce.count == nonceSize, key.count == keySize else { return nil }
        let ciphertext = Array(box[overhead...])
        let stream = Salsa20.xsalsa20Stream(key: key, nonce: nonce, count: 32 + ciphertext.count)
        let tag = try LibCrypto.poly1305(key: Array(stream[0..<32]), message: ciphertext)
        guard LibCrypto.equal(tag, Array(box[0..<overhead])) else { return nil }
        var message = [UInt8](repeating: 0, count: ciphertext.count)
        for i in 0..<ciphertext.count { message[i] = ciphertext[i] ^ stream[32 + i] }
        return message
    }
}

/// PEM (RFC 7468): `-----BEGIN TYPE-----`, base64 in lines of 64, `-----END TYPE-----`.
public enum PEM {
    public static func encode(_ der: [UInt8], type: String) -> String {
        let base64 = Data(der).base64EncodedString()
        var lines = ["-----BEGIN \(type)-----"]
        var index = base64.startIndex
        while index < base64.endIndex {
            let end = base64.index(index, offsetBy: 64, limitedBy: base64.endIndex) ?? base64.endIndex
            lines.append(String(base64[index..<end]))
            index = end
        }
        lines.append("-----END \(type)-----")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The first block of a PEM text: its type and bytes (headers before the base64 are not supported).
    public static func decode(_ text: String) -> (type: String, bytes: [UInt8])? {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let begin = lines.firstIndex(where: { $0.hasPrefix("-----BEGIN ") && $0.hasSuffix("-----") }) else {
            return nil
        }
        let type = String(lines[begin].dropFirst("-----BEGIN ".count).dropLast(5))
        guard let end = lines[begin...].firstIndex(of: "-----END \(type)-----") else { return nil }
        let body = lines[(begin + 1)..<end].joined()
        guard let data = Data(base64Encoded: body) else { return nil }
        return (type, [UInt8](data))
    }
}
