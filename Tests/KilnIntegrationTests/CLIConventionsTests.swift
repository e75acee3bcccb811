import Foundation
import KilnTestSupport
import Testing

/// What operators expect of any CLI: a version, and read-only commands that never write.
@Suite struct CLIConventionsTests {
    @Test func versionNamesKilnAndTheEncoding() throws {
        let out = try KilnBinary.run(["--version"]).stdout
        #expect(out.range(of: #"^kiln \d+\.\d+\.\d+ \(encoding \d+\)\n$"#, options: .regularExpression) != nil)
    }

    @Test func readOnlyCommandsNeverCreateAStore() throws {
        let tmp = try TemporaryDirectory("kiln-readonly")
        defer { tmp.remove() }
        let store = tmp.path + "/images"
        let list = try KilnBinary.run(["images", "--store", store])
        #expect(list.stdout.contains("no images in \(store) yet"))
        let json = try KilnBinary.run(["images", "--json", "--store", store]).stdout
        #expect(try JSONDecoder().decode([[String: String]].self, from: Data(json.utf8)).isEmpty)
        for arguments in [
            ["inspect", "komodod:1"], ["export", "komodod:1", "-o", tmp.path + "/out.tar"], ["gc", "--dry-run"],
            ["fsck"], ["untag", "komodod:1"],
        ] {
            let result = try KilnBinary.run(arguments + ["--store", store], check: false)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.contains("no image store at \(store)"), "\(arguments): \(result.stderr)")
        }
        // Nothing was written: neither the store nor anything beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == [])
    }

    @Test func exitCodesAreTheDocumentedOnes() throws {
        let tmp = try TemporaryDirectory("kiln-exit")
        defer { tmp.remove() }
        let store = tmp.path + "/images"
        try FileManager.default.createDirectory(atPath: tmp.path + "/r", withIntermediateDirectories: true)
        try "name: x\nversion: '1'\nbase: scratch\nbogus: 1\n".write(
            toFile: tmp.path + "/r/x.yaml", atomically: true, encoding: .utf8)
        // 65: a bad recipe, with its location.
        let recipe = try KilnBinary.run(["build", tmp.path + "/r", "--store", store], check: false)
        #expect(recipe.status == 65)
        #expect(recipe.stderr.contains("x.yaml:4:1"))
        // 64: the command line is wrong.
        #expect(try KilnBinary.run(["images", "--no-such-flag"], check: false).status == 64)
        // 2: the command could not do its work (here: no store); with --json the error is JSON on stdout too.
        let missing = try KilnBinary.run(["inspect", "x:1", "--json", "--store", store], check: false)
        #expect(missing.status == 2)
        struct Failure: Decodable {
            var schemaVersion: Int
            var error: String
            var exitCode: Int32
        }
        let failure = try JSONDecoder().decode(Failure.self, from: Data(missing.stdout.utf8))
        #expect(failure.schemaVersion == 1 && failure.exitCode == 2 && failure.error.contains("no image store"))
    }
}
