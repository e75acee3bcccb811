import Foundation

/// What can go wrong with keys, signatures and attestations; each case says what a person can do about it.
public enum SignError: Error, CustomStringConvertible, Equatable {
    /// A key file that is not in a format Kiln reads (with the file and why).
    case badKey(path: String, reason: String)
    /// The password does not open the private key.
    case wrongPassword(path: String)
    /// A key file exists where a new one would be written.
    case keyExists(path: String)
    /// No password was given where one is needed.
    case noPassword(String)
    /// OpenSSL refused an operation (generation, signing, encoding).
    case crypto(String)
    /// A signature or attestation document that is not well formed.
    case malformed(String)

    public var description: String {
        switch self {
        case .badKey(let path, let reason): return "\(path): not a usable key: \(reason)"
        case .wrongPassword(let path):
            return "\(path): the password does not open this key (or the file is damaged)"
        case .keyExists(let path): return "\(path) exists: remove it or pass --force to replace it"
        case .noPassword(let hint): return "no password: \(hint)"
        case .crypto(let what): return "cryptography failed: \(what)"
        case .malformed(let what): return what
        }
    }
}
