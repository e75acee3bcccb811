import Foundation

/// Deterministic JSON: sorted keys, no insignificant whitespace, `/` not escaped.
/// Every document Kiln writes goes through here so its digest depends only on its content.
public enum CanonicalJSON {
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    /// Pretty-printed, still sorted: for people, never hashed.
    public static func pretty<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        return try encoder.encode(value)
    }

    /// Pretty and sorted like `pretty`, but with `key: value` written before the sorted members: a version a
    /// reader should meet first (the `schemaVersion` of `--json` documents). `object` must encode as a JSON
    /// object without `key` of its own.
    public static func pretty<T: Encodable>(_ object: T, firstKey key: String, value: Int) throws -> Data {
        let body = try pretty(object)
        guard let members = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw EncodingError.invalidValue(
                object, .init(codingPath: [], debugDescription: "\(T.self) does not encode as a JSON object"))
        }
        guard members[key] == nil else {
            throw EncodingError.invalidValue(
                object, .init(codingPath: [], debugDescription: "\(T.self) already has a member '\(key)'"))
        }
        let first = Data("{\n  ".utf8) + (try encode(key)) + Data(" : \(value)".utf8)
        // `body` is `{`, then each member on its own line, then `}`: the first member follows `{` directly.
        return members.isEmpty ? first + Data("\n}".utf8) : first + Data(",".utf8) + body.dropFirst()
    }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try JSONDecoder().decode(type, from: data)
    }
}

/// Encodes as `{}`: the value type of ExposedPorts and Volumes maps.
public struct EmptyObject: Hashable, Sendable, Codable {
    public init() {}
    public init(from decoder: Decoder) throws {}
    public func encode(to encoder: Encoder) throws {
        _ = encoder.container(keyedBy: NoKeys.self)
    }
    private enum NoKeys: CodingKey {}
}

/// Canonical JSON appended by hand, for a document too large for `JSONEncoder` on the critical path: a layer's
/// cache key of 15.5k entries spent about 0.1 CPU-s there, after the layer was written. The bytes are those of
/// `CanonicalJSON.encode` for the same members, which the caller writes in sorted key order.
public struct CanonicalJSONWriter {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    /// Punctuation and member names: `{"name":`, `,`, `]`.
    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    public mutating func integer(_ value: some BinaryInteger) {
        bytes.append(contentsOf: String(value).utf8)
    }

    /// A string as JSONEncoder writes it: `"` and `\` escaped, the short escapes for \b \f \n \r \t, `\u00xx`
    /// for other control characters, everything else (`/` too) as is.
    public mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case 0x08: raw("\\b")
            case 0x0C: raw("\\f")
            case UInt8(ascii: "\n"): raw("\\n")
            case UInt8(ascii: "\r"): raw("\\r")
            case UInt8(ascii: "\t"): raw("\\t")
            case 0..<0x20:
                raw("\\u00")
                bytes.append(Self.hexDigits[Int(byte >> 4)])
                bytes.append(Self.hexDigits[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}
