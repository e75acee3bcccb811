import Foundation
import KilnOCI
import Testing

/// `CanonicalJSON.pretty(_:firstKey:value:)`: the envelope of every `--json` document.
@Suite struct JSONTests {
    struct Listing: Encodable {
        var images: [String]
        var count: Int
    }

    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    @Test func theFirstKeyComesBeforeTheSortedMembers() throws {
        let data = try CanonicalJSON.pretty(Listing(images: ["a", "b"], count: 2), firstKey: "schemaVersion", value: 1)
        #expect(
            text(data) == """
                {
                  "schemaVersion" : 1,
                  "count" : 2,
                  "images" : [
                    "a",
                    "b"
                  ]
                }
                """)
        // Still one valid document with every member.
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object.keys.sorted() == ["count", "images", "schemaVersion"])
    }

    @Test func anEmptyObjectGetsTheKeyAlone() throws {
        struct Empty: Encodable {}
        let data = try CanonicalJSON.pretty(Empty(), firstKey: "schemaVersion", value: 1)
        #expect(text(data) == "{\n  \"schemaVersion\" : 1\n}")
        #expect(try JSONSerialization.jsonObject(with: data) as? [String: Int] == ["schemaVersion": 1])
    }

    @Test func aBareArrayOrADuplicateKeyIsRefused() throws {
        #expect(throws: EncodingError.self) {
            try CanonicalJSON.pretty(["a", "b"], firstKey: "schemaVersion", value: 1)
        }
        struct Versioned: Encodable { var schemaVersion = 2 }
        #expect(throws: EncodingError.self) {
            try CanonicalJSON.pretty(Versioned(), firstKey: "schemaVersion", value: 1)
        }
    }

    /// The hand-written writer gives JSONEncoder's bytes: every ASCII character alone and in context, non-ASCII,
    /// separators JSONEncoder might escape, integers at their limits, and a keyed document.
    @Test func theWriterMatchesTheCanonicalEncoder() throws {
        var strings = (0..<128).map { String(UnicodeScalar(UInt8($0))) }
        strings += ["", "/usr/share/doc/a b", "é日本🙂", "\u{2028}\u{2029}\u{7F}\u{85}", "x\"y\\z\u{0}\u{1F}/"]
        for value in strings {
            var writer = CanonicalJSONWriter()
            writer.string(value)
            #expect(writer.bytes == Array(try CanonicalJSON.encode(value)), "\(Array(value.unicodeScalars))")
        }
        for value in [Int64.min, -1, 0, 7, Int64.max] {
            var writer = CanonicalJSONWriter()
            writer.integer(value)
            #expect(writer.bytes == Array(try CanonicalJSON.encode(value)))
        }
        struct Member: Encodable {
            var path: String
            var mode: UInt32
        }
        struct Document: Encodable {
            var list: [Member]
            var name: String
        }
        let document = Document(list: [Member(path: "a/\"b\"", mode: 0o644), Member(path: "c", mode: 0)], name: "n")
        var writer = CanonicalJSONWriter()
        writer.raw("{\"list\":[")
        for (index, member) in document.list.enumerated() {
            if index > 0 { writer.raw(",") }
            writer.raw("{\"mode\":")
            writer.integer(member.mode)
            writer.raw(",\"path\":")
            writer.string(member.path)
            writer.raw("}")
        }
        writer.raw("],\"name\":")
        writer.string(document.name)
        writer.raw("}")
        #expect(writer.bytes == Array(try CanonicalJSON.encode(document)))
    }
}
