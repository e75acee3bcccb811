import Foundation
import KilnOCI
import KilnStore

/// `kiln key generate PREFIX`: PREFIX.key (encrypted, mode 0600) and PREFIX.pub, as `cosign generate-key-pair`
/// writes cosign.key and cosign.pub.
public enum KeyFiles {
    public struct Written: Codable, Sendable {
        public var privateKey: String
        public var publicKey: String
        public var keyID: Digest
    }

    public static func generate(prefix: String, password: [UInt8], replace: Bool = false) throws -> Written {
        let privatePath = prefix + ".key"
        let publicPath = prefix + ".pub"
        if !replace {
            for path in [privatePath, publicPath] where FileManager.default.fileExists(atPath: path) {
                throw SignError.keyExists(path: path)
            }
        }
        let key = try PrivateKey.generate()
        let sealed = try EncryptedKey.seal(key, password: password)
        let publicKey = try key.publicKey()
        try write(sealed, to: privatePath, mode: 0o600)
        try write(publicKey.pem, to: publicPath, mode: 0o644)
        return Written(privateKey: privatePath, publicKey: publicPath, keyID: publicKey.keyID)
    }

    /// A key file's PEM text, written through the store's atomic write (temp file, fsync, rename): a crash
    /// leaves the old file or the new one, never half a key, and the private key is never readable by others.
    static func write(_ pem: String, to path: String, mode: mode_t) throws {
        try AtomicFile.write(Data(pem.utf8), to: path, mode: mode)
    }

    /// A key file's text; `path` names it in errors.
    static func text(at path: String) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw SignError.badKey(path: path, reason: "cannot read it")
        }
        return text
    }

    /// The bytes of the first PEM block of a key file's text, which must be of one of `types` (the first is
    /// the one Kiln writes).
    static func block(in text: String, types: [String], path: String) throws -> [UInt8] {
        guard let (type, bytes) = PEM.decode(text) else {
            throw SignError.badKey(path: path, reason: "no '-----BEGIN \(types[0])-----' PEM block")
        }
        guard types.contains(type) else {
            let known = types.map { "'\($0)'" }.joined(separator: " or ")
            throw SignError.badKey(path: path, reason: "a '\(type)' PEM block; Kiln reads \(known)")
        }
        return bytes
    }
}
