import Foundation
import KilnSign
import Testing
import Yams

/// The one YAML emitter of the deployment files: whatever a value holds, it reads back as itself.
@Suite struct YAMLFileTests {
    /// Values a hostile or careless image config could carry into a deployment file.
    static let hostile = [
        "a: b", "x # not a comment", "\"double\"", "'single'", "line\nbreak", "- leading dash", "* star", "&anchor",
        "*alias", "!tag", "%directive", "@at", "`tick`", "{flow}", "[seq]", "|", ">", "?", "key: value # c", "",
        " padded ", "no", "y", "true", "null", "~", "0755", "1e3", "0x1F", "12:30", "tab\there", "back\\slash",
        "crlf\r\nend", "unicode é \u{2028} sep", "---", "...", "--- a", "nul\u{0}byte", "del\u{7F}",
        "bell\u{7}", "\u{85}next line",
    ]

    @Test func hostileValuesReadBackAsThemselves() throws {
        for value in Self.hostile {
            let document: YAMLValue = [
                "name": .string(value), "env": [["name": .string(value), "value": .string(value)]],
                "command": .flow([value, "x"]), "environment": .map([(value, .string(value))]),
            ]
            let text = YAMLFile(documents: [document]).text
            let parsed = try #require(try Yams.load(yaml: text) as? [String: Any], "\(value.debugDescription): \(text)")
            #expect(parsed["name"] as? String == value, "\(value.debugDescription): \(text)")
            #expect((parsed["env"] as? [[String: String]])?.first == ["name": value, "value": value])
            #expect(parsed["command"] as? [String] == [value, "x"], "\(value.debugDescription): \(text)")
            #expect((parsed["environment"] as? [String: String])?[value] == value, "\(value.debugDescription): \(text)")
            #expect(parsed.count == 4, "no key was injected: \(text)")
        }
    }

    /// A value in a comment (a secret's name, a reference) that holds a line break stays a comment.
    @Test func commentsCannotBreakOut() throws {
        let text = YAMLFile(comments: ["first", "evil\ninjected: true", "crlf\r\nkind: Secret"], documents: [["a": 1]])
            .text
        #expect(text.hasPrefix("# first\n# evil\n# injected: true\n"))
        let parsed = try #require(try Yams.load(yaml: text) as? [String: Any])
        #expect(parsed.keys.sorted() == ["a"], "\(text)")
    }

    @Test func typesOrderAndDocumentsAreKept() throws {
        let pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
        let file = YAMLFile(
            comments: ["header"],
            documents: [["kind": "A", "port": 7770, "on": true, "key": .lines(pem), "skipped": nil], ["kind": "B"]],
            markDocuments: true)
        let text = file.text
        #expect(text.hasPrefix("# header\n---\n"), "\(text)")
        #expect(text.contains("\n---\n"), "a separator before the second document: \(text)")
        let documents = try Yams.load_all(yaml: text).map { $0 as? [String: Any] }
        #expect(documents.count == 2)
        let first = try #require(documents.first ?? nil)
        // Mapping order as given; nil left out.
        #expect(
            try Yams.compose_all(yaml: text).first { _ in true }?.mapping?.keys.compactMap(\.string)
                == ["kind", "port", "on", "key"])
        #expect(first["port"] as? Int == 7770)
        #expect(first["on"] as? Bool == true)
        #expect(first["key"] as? String == pem)
        #expect(documents.last??["kind"] as? String == "B")
        #expect(text.contains("key: |\n"), "PEM as a literal block: \(text)")
    }
}
