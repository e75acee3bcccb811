import Foundation
import KilnTestSupport
import Testing

/// `--cache-dir` is the one download cache: `.deb`s and their unpacked trees go there too, not to the default
/// cache (issue 13: they used to ignore it).
@Suite(.serialized) struct CacheDirTests {
    @Test func cacheDirAppliesToDebianPackages() async throws {
        try await withDebianRepository(packages: DebianBuildTests.packages) { repository in
            try await withTemporaryDirectory("kiln-cachedir") { tmp in
                try repository.serve()
                try tmp.write("recipes/debbase.yaml", DebianBuildTests.recipe("debbase", repository: repository))
                try KilnBinary.run(
                    [
                        "build", tmp.path + "/recipes", "--store", tmp.path + "/images", "--cache-dir",
                        tmp.path + "/chosen",
                    ],
                    environment: ["KILN_CACHE_DIR": tmp.path + "/default"])
                let chosen = (try? FileManager.default.contentsOfDirectory(atPath: tmp.path + "/chosen/sha256")) ?? []
                #expect(chosen.count >= 2, "the index and the .debs: \(chosen)")
                #expect(FileManager.default.fileExists(atPath: tmp.path + "/chosen/unpacked-v2"))
                #expect(!FileManager.default.fileExists(atPath: tmp.path + "/default"), "nothing in the default cache")
            }
        }
    }
}
