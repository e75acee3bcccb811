import Foundation
import KilnTestSupport
import Testing

/// Digests depend on content only: the version being built is a tag, not an input.
@Suite struct ContentDigestTests {
    static let golden = KilnBinary.packageRoot + "/Tests/Fixtures/golden"
    static let environment = ["SOURCE_DATE_EPOCH": "", "TZ": "UTC"]

    @Test func twoVersionsOfAnUnchangedRecipeHaveOneDigestAndLockedAcceptsANewVersion() async throws {
        try await withTemporaryDirectory("kiln-content") { tmp in
            try FileManager.default.copyItem(atPath: Self.golden, toPath: tmp.path + "/recipes")
            let store = tmp.path + "/images"
            let lockPath = tmp.path + "/recipes/kiln.lock"
            try "{\"lockVersion\": 1}\n".write(toFile: lockPath, atomically: true, encoding: .utf8)
            try KilnBinary.run(
                ["build", tmp.path + "/recipes", "--version", "1.1.0", "--store", store], environment: Self.environment)
            let lock = try String(contentsOfFile: lockPath, encoding: .utf8)
            // One entry per image, keyed by name, not by version.
            #expect(lock.contains("\"golden-app\"") && !lock.contains("golden-app:"))
            try KilnBinary.run(
                ["build", tmp.path + "/recipes", "--version", "1.2.0", "--store", store], environment: Self.environment)
            #expect(try String(contentsOfFile: lockPath, encoding: .utf8) == lock)
            // A version never built before passes --locked and leaves the lock as it was.
            try KilnBinary.run(
                ["build", tmp.path + "/recipes", "--locked", "--version", "1.3.0", "--store", store],
                environment: Self.environment)
            #expect(try String(contentsOfFile: lockPath, encoding: .utf8) == lock)
            let stored = try KilnBinary.imageDigests(store)
            #expect(stored["golden-app:1.1.0"] != nil)
            #expect(Set(["1.1.0", "1.2.0", "1.3.0"].map { stored["golden-app:\($0)"] }).count == 1)
            // The version lives on the tag's index.json entry.
            let index = try String(contentsOfFile: store + "/index.json", encoding: .utf8)
            #expect(index.contains("\"org.opencontainers.image.version\":\"1.3.0\""))

            // Changed content is a difference from the lock: exit 1 (as `kiln verify`), nothing tagged.
            try "changed\n".write(toFile: tmp.path + "/recipes/files/hello.sh", atomically: true, encoding: .utf8)
            let differs = try KilnBinary.run(
                ["build", tmp.path + "/recipes", "--locked", "--version", "1.4.0", "--store", store],
                environment: Self.environment, check: false)
            #expect(differs.status == 1)
            #expect(differs.stderr.contains("--locked: 2 of 2 images differ"), "\(differs.stderr)")
            #expect(differs.stderr.contains("golden-base:1.4.0 builds to"))
            #expect(differs.stderr.contains("nothing was tagged"))
            #expect(try KilnBinary.imageDigests(store)["golden-base:1.4.0"] == nil)
        }
    }
}
