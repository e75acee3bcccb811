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
}
