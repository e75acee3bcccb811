import CCrypto
import Foundation

/// A content digest, `algorithm:encoded`, as in the OCI descriptor grammar.
/// Kiln writes only sha256; other well-formed algorithms are accepted when reading.
public struct Digest: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    public let algorithm: String
    public let encoded: String

    public enum ParseError: Error, CustomStringConvertible, Equatable {
        case malformed(String)
        public var description: String {
            switch self {
            case .malformed(let s):
                return "'\(s)' is not a digest: write it as sha256: followed by 64 lower-case hex digits"
            }
        }
    }

    /// Checks bytes, not Characters: Unicode property lookups made parsing the file-digest cache the largest
    /// cost of a no-op rebuild. The grammar is ASCII-only, so the result is the same.
    public init(parsing string: String) throws {
        let bytes = Array(string.utf8)
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { throw ParseError.malformed(string) }
        let algorithm = bytes[..<colon]
        let encoded = bytes[(colon + 1)...]
        func lower(_ b: UInt8) -> Bool { b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z") }
        func digit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        func upper(_ b: UInt8) -> Bool { b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") }
        let algOK = !algorithm.isEmpty && algorithm.allSatisfy { lower($0) || digit($0) || "+._-".utf8.contains($0) }
        let encOK =
            !encoded.isEmpty && encoded.allSatisfy { lower($0) || upper($0) || digit($0) || "=_-".utf8.contains($0) }
        guard algOK, encOK else { throw ParseError.malformed(string) }
        let algorithmText = String(decoding: algorithm, as: UTF8.self)
        if algorithmText == "sha256" {
            guard encoded.count == 64,
                encoded.allSatisfy({ digit($0) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f")) })
            else { throw ParseError.malformed(string) }
        }
        self.algorithm = algorithmText
        self.encoded = String(decoding: encoded, as: UTF8.self)
    }

    /// A sha256 digest from its 64 lower-case hex characters.
    public init(sha256Hex hex: String) throws {
        try self.init(parsing: "sha256:" + hex)
    }

    public var description: String { "\(algorithm):\(encoded)" }

    public static func < (a: Digest, b: Digest) -> Bool { a.description < b.description }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        do {
            try self.init(parsing: c.decode(String.self))
        } catch let error as ParseError {
            // A DecodingError carries the coding path, so a reader can say where in the document it is.
            throw DecodingError.dataCorruptedError(in: c, debugDescription: error.description)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// The sha256 digest of `bytes`.
    public static func sha256(_ bytes: some DataProtocol) -> Digest {
        var hasher = SHA256()
        for region in bytes.regions {
            region.withUnsafeBytes { hasher.update($0) }
        }
        return hasher.finalize()
    }

    /// The sha256 digest of a UTF-8 string.
    public static func sha256(_ string: String) -> Digest {
        sha256(Data(string.utf8))
    }
}

/// An incremental SHA-256 over OpenSSL's libcrypto (uses the CPU's SHA extensions where present).
/// Non-copyable: one hasher owns one OpenSSL context.
// @unchecked: OpaquePointer is not Sendable, but a non-copyable hasher has exactly one owner, so the context
// moves with it and is never used from two places at once (the stages that hash on their own threads keep it
// inside a Mutex).
public struct SHA256: ~Copyable, @unchecked Sendable {
    private let context: OpaquePointer

    public init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        EVP_DigestUpdate(context, base, buffer.count)
    }

    public mutating func update(_ data: Data) {
        data.withUnsafeBytes { update($0) }
    }

    /// Finishes the hash and starts over, so the hasher can be reused.
    public mutating func finalize() -> Digest {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
        // Force-try is safe: 64 lower-case hex digits always parse.
        return try! Digest(sha256Hex: Hex.encode(out))
    }
}
