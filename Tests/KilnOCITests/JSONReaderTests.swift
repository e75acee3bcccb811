import Foundation
import KilnOCI
import Testing

/// The position-keeping JSON reader behind every located JSON error.
@Suite struct JSONReaderTests {
    func parse(_ text: String) throws(JSONSyntaxError) -> JSONNode { try JSONReader.parse(Array(text.utf8)) }

    @Test func readsValuesWithTheirOffsets() throws {
        let node = try parse(#" {"a": [1, -2.5e3, "x\n\u00e9\ud83d\ude00", true, null], "b": {}}"#)
        guard case .object(let members) = node.value else { throw CancellationError() }
        #expect(node.offset == 1)
        #expect(members.map(\.key) == ["a", "b"])
        #expect(members.map(\.keyOffset) == [2, 57])
        guard case .array(let items) = members[0].value.value else { throw CancellationError() }
        #expect(items.map(\.offset) == [8, 11, 19, 44, 50])
        guard case .string(let text) = items[2].value, case .number(let number) = items[1].value else {
            throw CancellationError()
        }
        #expect(text == "x\né😀")
        #expect(number == "-2.5e3")
    }

    @Test(arguments: [
        ("", 0, "the document ends where a value should be"),
        ("{\"a\" 1}", 5, "expected ':' after the key \"a\""),
        ("[1,]", 3, "unexpected ']' where a value should be"),
        ("[01]", 2, "a number must not start with 0"),
        ("\"a\tb\"", 2, "a control character inside a string (escape it, e.g. \\n)"),
        ("\"\\ud800\"", 7, "a lone UTF-16 surrogate in \\u escape"),
        ("\"\\x\"", 2, "unknown escape \\'x'"),
        ("{} {}", 3, "unexpected text after the document"),
        ("tru", 0, "unexpected 't' where a value should be"),
    ])
    func syntaxErrorsHaveOffsets(_ text: String, _ offset: Int, _ message: String) {
        #expect(throws: JSONSyntaxError(offset: offset, message: message)) { try parse(text) }
    }

    @Test func nestingIsLimited() {
        #expect(throws: JSONSyntaxError(offset: 512, message: "nested deeper than 512 levels")) {
            try parse(String(repeating: "[", count: 100_000))
        }
        #expect(throws: Never.self) {
            try parse(String(repeating: "[", count: 511) + String(repeating: "]", count: 511))
        }
    }

    @Test func positionsCountCharactersNotBytes() {
        let bytes = Array("{\n  \"é\": x".utf8)
        #expect(JSONReader.position(of: bytes.count - 1, in: bytes) == (2, 8))
        #expect(JSONReader.position(of: 0, in: bytes) == (1, 1))
    }

    @Test func decodeErrorsNameLineColumnAndKey() throws {
        struct Doc: Decodable {
            var items: [Item]
            struct Item: Decodable { var digest: Digest }
        }
        let text =
            "{\"items\": [\n  {\"digest\": \"sha256:\(String(repeating: "a", count: 64))\"},\n  {\"digest\": 5}\n]}"
        let error = try #require(throws: JSONDocumentError.self) {
            _ = try CanonicalJSON.decode(Doc.self, from: Data(text.utf8), path: "doc.json")
        }
        #expect(error.description == "doc.json:3:14: expected a string, found a number (at items[1].digest)")
        #expect(error.reason == "line 3, column 14 (items[1].digest): expected a string, found a number")
    }
}
