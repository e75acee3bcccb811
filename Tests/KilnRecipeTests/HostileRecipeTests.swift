import Foundation
import KilnKomodo
import KilnTestSupport
import Testing

@testable import KilnRecipe

/// Recipes written to hurt: bombs, huge values, wrong bytes and values that used to be accepted and built into
/// a broken image. Each ends in one clear error at its line and column, in bounded time and memory. The big
/// inputs are generated here rather than checked in.
@Suite struct HostileRecipeTests {
    /// A directory with the recipe and the real assetchains.json beside it.
    func load(_ yaml: String, matrix: String? = nil) throws -> (
        recipes: [Recipe], problems: [Diagnostic], seconds: Double
    ) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-hostile-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let json = matrix ?? Self.chains
        try json.write(toFile: dir + "/assetchains.json", atomically: true, encoding: .utf8)
        let start = Date()
        let (recipes, problems) = RecipeSet.parse(yaml, file: dir + "/ac.yaml", derivations: [KomodoMatrix()])
        return (recipes, problems, Date().timeIntervalSince(start))
    }

    /// 46 plain chains, the size of the assetchains.json these cases were first measured with; the Komodo
    /// content itself (recipes/assetchains.json) moves with upstream and must not move these limits.
    static let chains =
        "[" + (0..<46).map { #"{"ac_name": "CHAIN\#($0)", "ac_supply": "1000000"}"# }.joined(separator: ", ") + "]"

    static let matrixHead = """
        matrix: {file: assetchains.json}
        name: "{{ac_name | lower}}"
        version: "1"
        base: komodod

        """

    /// Nine aliases of nine aliases, `depth` levels: 9^depth strings from a few hundred bytes.
    static func aliasBomb(depth: Int) -> String {
        var text = "x0: &a0 [" + Array(repeating: "\"{{ac_name}}\"", count: 9).joined(separator: ", ") + "]\n"
        for level in 1..<depth {
            text +=
                "x\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ", ") + "]\n"
        }
        return text
    }

    @Test(arguments: [5, 7, 9]) func aliasBombInAMatrixIsRefusedQuickly(_ depth: Int) throws {
        let before = Fuzzer.peakMemory
        let (recipes, problems, seconds) = try load(Self.matrixHead + Self.aliasBomb(depth: depth))
        #expect(recipes.isEmpty)
        #expect(problems.count == 1)
        let problem = try #require(problems.first)
        #expect(problem.message.contains("expands to more than 20000 values"))
        // The first level whose total passes the cap: 9^5 > 20,000 at x4 (line 9).
        #expect(problem.location.line == 9 && problem.location.column == 1)
        #expect(seconds < 1, "took \(seconds) s")
        // Process-wide peak (tests run in parallel), so a generous bound: the bomb took 2.7-6.1 GB.
        #expect(Fuzzer.peakMemory - before < 1 << 30)
    }

    @Test func aliasBombOutsideAMatrixIsRefusedToo() throws {
        let yaml = "name: a\nversion: '1'\nbase: b\n" + Self.aliasBomb(depth: 8)
        let (recipes, problems, seconds) = try load(yaml)
        #expect(recipes.isEmpty)
        #expect(problems.map { "\($0.location.line):\($0.location.column)" } == ["8:1"])
        #expect(seconds < 1)
    }

    /// The issue's case: a 1 MB `stop-signal:` in a matrix recipe (it hung): refused by size, at once.
    @Test func megabyteStopSignalInAMatrixIsRefusedQuickly() throws {
        let yaml = Self.matrixHead + "stop-signal: " + String(repeating: "A", count: 1 << 20) + "\n"
        let (recipes, problems, seconds) = try load(yaml)
        #expect(recipes.isEmpty)
        #expect(problems.map { "\($0.location.line):\($0.location.column)" } == ["1:1"])
        #expect(problems.first?.message.hasPrefix("the recipe is 1048") == true)
        #expect(seconds < 1, "took \(seconds) s")
    }

    /// 20,000 templates in one string, times 46 chains: refused before templating, at `matrix:`.
    @Test func templatesTimesEntriesAreRefusedBeforeTemplating() throws {
        let yaml = Self.matrixHead + "stop-signal: \"" + String(repeating: "{{ac_name}}", count: 20_000) + "\"\n"
        let (recipes, problems, seconds) = try load(yaml)
        #expect(recipes.isEmpty)
        #expect(problems.count == 1)
        #expect(problems.first?.message.hasPrefix("the matrix would expand to more than") == true)
        #expect(problems.first.map { "\($0.location.line):\($0.location.column)" } == "1:9")
        #expect(seconds < 1, "took \(seconds) s")
    }

    /// Templates within the limits render in linear time (each `{{` used to copy the rest of the string).
    @Test func manyTemplatesRenderQuickly() throws {
        let yaml = Self.matrixHead + "stop-signal: \"" + String(repeating: "{{ac_name}}", count: 1_000) + "\"\n"
        let (recipes, problems, seconds) = try load(yaml)
        #expect(recipes.isEmpty)
        #expect(problems.count > 40)
        #expect(problems.allSatisfy { $0.location.line == 5 && $0.message.hasPrefix("unknown stop signal") })
        #expect(seconds < 2, "took \(seconds) s")
    }

    @Test func longValuesInAMatrixGiveShortMessages() throws {
        let yaml = Self.matrixHead + "stop-signal: \"{{ac_name}}" + String(repeating: "A", count: 200_000) + "\"\n"
        let (recipes, problems, seconds) = try load(yaml)
        #expect(recipes.isEmpty)
        #expect(problems.count > 40)
        #expect(problems.allSatisfy { $0.location.line == 5 && $0.message.count <= Diagnostic.maxMessageLength + 1 })
        #expect(seconds < 3, "took \(seconds) s")
    }

    @Test func recipeOverTheSizeLimitIsRefused() throws {
        let yaml = "name: a\nversion: '1'\nbase: b\nlabels: {x: \"" + String(repeating: "y", count: 256 << 10) + "\"}\n"
        let (_, problems, _) = try load(yaml)
        #expect(
            problems.map(\.message) == [
                "the recipe is \(yaml.utf8.count) bytes; Kiln reads recipes up to 262144 bytes"
            ])
    }

    /// The most values a file within the size limit can hold: composed and refused in bounded time and memory.
    @Test func widestListWithinTheSizeLimit() throws {
        let before = Fuzzer.peakMemory
        let head = "name: a\nversion: '1'\nbase: b\ncmd: ["
        let count = (RecipeLimits.maxFileBytes - head.utf8.count - 4) / 2
        let (recipes, problems, seconds) = try load(head + String(repeating: "1,", count: count) + "1]\n")
        #expect(recipes.isEmpty)
        #expect(problems.map { "\($0.location.line):\($0.location.column)" } == ["4:1"])
        #expect(seconds < 3, "took \(seconds) s")
        #expect(Fuzzer.peakMemory - before < 1 << 30, "peak memory grew by \((Fuzzer.peakMemory - before) >> 20) MB")
    }

    /// A matrix just under the per-recipe cap, times 46 chains: refused before any entry is templated.
    @Test func aliasesTimesEntriesAreRefusedBeforeTemplating() throws {
        var yaml =
            Self.matrixHead + "x0: &a0 [" + Array(repeating: "\"{{ac_name}}\"", count: 6).joined(separator: ", ")
            + "]\n"
        for level in 1..<5 {
            yaml +=
                "x\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 6).joined(separator: ", ") + "]\n"
        }
        let (recipes, problems, seconds) = try load(yaml)
        #expect(recipes.isEmpty)
        #expect(problems.map { String($0.message.prefix(36)) } == ["the matrix would expand to more than"])
        #expect(seconds < 1, "took \(seconds) s")
    }

    @Test func nestingDeeperThanTheLimitIsRefused() throws {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        let (_, problems, _) = try load("name: a\nversion: '1'\nbase: b\nlabels: " + deep + "\n")
        #expect(
            problems.map { "\($0.location.line):\($0.location.column): \($0.message)" } == [
                "4:1: 'labels' nests lists and maps more than 64 levels deep"
            ])
        // Past libyaml's own limit: its error, with a location.
        let deeper = String(repeating: "[", count: 5000)
        let (_, more, _) = try load("name: a\nlabels: " + deeper + "\n")
        #expect(more.count == 1 && more[0].location.line == 2)
    }

    @Test func nonUTF8BytesAreNamedByLineAndColumn() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-utf8-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var bytes = Array("name: a\nversion: '1'\nlabels: {é: \"caf".utf8)
        bytes += [0xE9] + Array("\"}\n".utf8)  // Latin-1 é
        _ = FileManager.default.createFile(atPath: dir + "/a.yaml", contents: Data(bytes))
        _ = FileManager.default.createFile(
            atPath: dir + "/b.yaml", contents: Data([0xFF, 0xFE] + Array("n\0a\0".utf8)))
        let error = try #require(throws: RecipeError.self) {
            try RecipeSet.load(paths: [dir], derivations: [KomodoMatrix()])
        }
        #expect(
            error.diagnostics.map { "\($0.location.line):\($0.location.column): \($0.message)" } == [
                "3:17: byte 0xe9 is not UTF-8", "1:1: byte 0xff is not UTF-8 (the file is UTF-16)",
            ])
        #expect(error.diagnostics.first?.location.file == dir + "/a.yaml")
    }

    @Test func controlCharactersAreNamedByLineAndColumn() throws {
        let (_, problems, _) = try load("name: a\nversion: '1'\nbase: b\nlabels: {a: b\u{01}}\n")
        #expect(problems.map { "\($0.location.line):\($0.location.column)" } == ["4:14"])
    }

    /// Line breaks YAML counts and editors do not would shift every later location: refused where they are.
    @Test(arguments: [
        (
            "name: a\nversion: '1' # x\u{2028}y\nbase: b\n",
            "2:17: U+2028 is a line break to YAML but not to most editors"
        ),
        (
            "name: a\r\nversion: '1'\rbase: b\n",
            "2:13: a carriage return without a line feed is a line break to YAML but not to most editors"
        ),
        ("name: a\nbase: b\u{85}\n", "2:8: U+85 is a line break to YAML but not to most editors"),
    ])
    func lineBreaksEditorsDoNotCount(_ yaml: String, _ expected: String) throws {
        let (_, problems, _) = try load(yaml)
        #expect(problems.map { "\($0.location.line):\($0.location.column): \($0.message)" } == [expected])
    }

    @Test func emptyPortsDoNotCrash() throws {
        let (_, problems, _) = try load("name: a\nversion: '1'\nbase: b\nports: [\"\", \"/tcp\"]\n")
        #expect(problems.map(\.message) == ["'' is not a port", "'/tcp' is not a port"])
    }

    /// Values that parsed and then built an image that fails only when it runs.
    static let wrongValues: [(String, String)] = [
        ("user: \"root:root:root\"", "4:7: user 'root:root:root' is not USER or USER:GROUP"),
        ("user: \"a b\"", "4:7: user 'a b' is not USER or USER:GROUP"),
        ("stop-signal: 99", "4:14: unknown stop signal '99'"),
        ("stop-signal: SIGRTMINX", "4:14: unknown stop signal 'SIGRTMINX'"),
        ("stop-signal: 0", "4:14: unknown stop signal '0'"),
        ("platforms: [windows/amd64]", "4:12: 'windows/amd64': Kiln builds Linux images only, not windows"),
        ("platforms: [linux/amd65]", "4:12: 'amd65' is not an architecture"),
        ("platforms: [linux/arm/7]", "4:12: '7' is not a platform variant"),
        ("platforms: []", "4:12: platforms is empty"),
        ("platforms: [linux/amd64, linux/amd64]", "4:12: a platform is listed twice"),
        (
            "users: [{name: \"x:0:0::/:/bin/sh\", uid: 1}]",
            "4:16: user name 'x:0:0::/:/bin/sh' is not a valid account name"
        ),
        ("users: [{name: a, uid: 1, shell: \"/bin/sh:x\"}]", "4:34: shell '/bin/sh:x' must not contain ':'"),
        (
            "users: [{name: a, uid: 1, home: \"/h\\nroot::0:0\"}]",
            "4:33: home contains a control character (a line break, tab or NUL)"
        ),
        ("groups: [{name: g, gid: 1, members: [\"a,root\"]}]", "4:37: member 'a,root' is not a valid account name"),
        ("workdir: \"/a\\0b\"", "4:10: workdir contains a control character (a line break, tab or NUL)"),
    ]

    @Test(arguments: 0..<wrongValues.count) func wrongValueIsRefusedWithItsLocation(_ index: Int) throws {
        let (line, expected) = Self.wrongValues[index]
        let (_, problems, _) = try load("name: a\nversion: '1'\nbase: b\n" + line + "\n")
        #expect(problems.map { "\($0.location.line):\($0.location.column): \($0.message)" } == [expected])
        #expect(problems.allSatisfy { $0.hint != nil })
    }

    @Test func rightValuesStillParse() throws {
        let yaml = """
            name: a
            version: '1'
            base: b
            user: "3003:komodo"
            stop-signal: SIGRTMIN+3
            platforms: [linux/amd64, linux/arm64/v8, linux/arm/v7]
            users: [{name: komodo, uid: 3003, shell: /bin/sh}]
            groups: [{name: g, gid: 1, members: [komodo, _apt]}]
            """
        let (recipes, problems, _) = try load(yaml)
        #expect(problems.isEmpty)
        #expect(recipes.first?.settings.stopSignal == "SIGRTMIN+3")
        #expect(recipes.first?.platforms.count == 3)
        let (numbered, none, _) = try load("name: a\nversion: '1'\nbase: b\nstop-signal: 15\n")
        #expect(none.isEmpty && numbered.first?.settings.stopSignal == "15")
    }

    /// Modes: quoted octal digits only. Unquoted, YAML 1.1 reads 0755 as 493 and YAML 1.2 reads 755 as 755.
    @Test(arguments: [
        ("mode: 755", "8:15: mode 755 must be quoted: unquoted, YAML tools read it as a decimal or octal number"),
        ("mode: 0644", "8:15: mode 0644 must be quoted: unquoted, YAML tools read it as a decimal or octal number"),
        ("mode: \"+755\"", "8:15: '+755' is not a file mode"),
        ("mode: \"0o755\"", "8:15: '0o755' is not a file mode"),
        ("mode: 493", "8:15: '493' is not a file mode"),
    ])
    func modes(_ line: String, _ expected: String) throws {
        let yaml =
            "name: a\nversion: '1'\nlayers:\n  - name: l\n    add:\n      - src: f\n        to: /x\n        " + line
        let (_, problems, _) = try load(yaml + "\n")
        #expect(problems.map { "\($0.location.line):\($0.location.column): \($0.message)" } == [expected])
        #expect(problems.first?.hint?.contains("\"") == true)
        let (recipes, none, _) = try load(yaml.replacingOccurrences(of: line, with: "mode: \"0750\"") + "\n")
        #expect(none.isEmpty)
        if case .add(let add) = recipes.first?.layers.first?.items.first { #expect(add.ownership.mode == 0o750) }
    }

    /// Matrix files: values are strings, numbers or lists of them, named at their JSON line and column.
    @Test(arguments: [
        (#"[{"ac_name": true}]"#, "1:14: \"ac_name\" is true; matrix values are strings, numbers or lists of them"),
        (
            "[{\"ac_name\": \"A\",\n  \"ac_supply\": null}]",
            "2:16: \"ac_supply\" is null; matrix values are strings, numbers or lists of them"
        ),
        (
            #"[{"ac_name": "A", "addnode": [{"x": 1}]}]"#,
            "1:31: \"addnode\" is an object; matrix values are strings, numbers or lists of them"
        ),
        (#"[{"ac_name": "A"}, 7]"#, "1:20: a matrix entry must be an object, not a number"),
        (#"[{"ac_name": "A", "ac_name": "B"}]"#, "1:19: \"ac_name\" is given twice in this entry"),
        (#"[{"ac name": "A"}]"#, "1:3: \"ac name\" is not a parameter name"),
        (
            "[{\"ac_name\": \"A\"},\n {\"ac_name\": \"B\" \"x\": 1}]",
            "2:18: the matrix file is not JSON: expected ',' or '}' in an object"
        ),
        ("{}", "1:1: a matrix file must be a non-empty list of objects, not an object"),
        ("", "1:1: the matrix file is not JSON: the document ends where a value should be"),
    ])
    func badMatrixFiles(_ json: String, _ expected: String) throws {
        let (recipes, problems, _) = try load(Self.matrixHead + "cmd: [\"{{args}}\"]\n", matrix: json)
        #expect(recipes.isEmpty)
        #expect(problems.map { "\($0.location.line):\($0.location.column): \($0.message)" } == [expected])
        #expect(problems.allSatisfy { $0.location.file.hasSuffix("/assetchains.json") })
    }

    /// A matrix file is templated into the image's config: one outside the recipe's directory would copy a
    /// host file's values into the image.
    @Test(arguments: ["/etc/kiln-secrets.json", "../assetchains.json", "a/../../x.json"])
    func matrixFileOutsideTheRecipeDirectoryIsRefused(_ path: String) throws {
        let yaml = Self.matrixHead.replacingOccurrences(of: "assetchains.json", with: path)
        let (recipes, problems, _) = try load(yaml)
        #expect(recipes.isEmpty)
        #expect(
            problems.map { "\($0.location.line):\($0.location.column): \($0.message)" } == [
                "1:9: matrix file '\(path)' must stay inside the recipe's directory"
            ])
    }

    @Test func matrixWithTooManyEntriesIsRefused() throws {
        let json = "[" + (0..<5000).map { #"{"ac_name": "C\#($0)"}"# }.joined(separator: ",") + "]"
        let (_, problems, seconds) = try load(Self.matrixHead, matrix: json)
        #expect(problems.map(\.message) == ["the matrix file has 5000 entries; Kiln takes up to 4096"])
        #expect(seconds < 2)
    }
}
