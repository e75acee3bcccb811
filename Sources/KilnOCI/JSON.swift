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
