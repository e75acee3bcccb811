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
        ] {
            let result = try KilnBinary.run(arguments + ["--store", store], check: false)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.contains("no image store at \(store)"), "\(arguments): \(result.stderr)")
        }
        // Nothing was written: neither the store nor anything beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == [])
    }
}
