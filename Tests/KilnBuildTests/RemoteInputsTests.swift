import Foundation
import KilnHTTP
import KilnOCI
import KilnRecipe
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnBuild

/// Which sha256 an input gets: the recipe's, else the lock's; disagreements are reported at the recipe line.
@Suite struct RemoteInputsTests {
    static let pinned = Digest.sha256("recipe")
    static let locked = Digest.sha256("lock")

    func recipes() throws -> [Recipe] {
        let yaml = """
            name: a
            version: "1"
            layers:
              - name: l
                add:
                  - url: https://example.invalid/a.bin
                    sha256: \(Self.pinned.encoded)
                    to: /a.bin
                  - url: https://example.invalid/b.bin
                    to: /b.bin
            """
        let (recipes, problems) = RecipeSet.parse(yaml, file: "/r/a.yaml")
        try #require(problems.isEmpty)
        return recipes
    }

    /// `kiln lock` prints a GitHub release asset's release notes address beside the digest it trusted.
    @Test func releaseNotesAddressOfAGitHubReleaseAsset() {
        #expect(
            InputEvent.releaseNotes(
                forDownload:
                    "https://github.com/GLEECBTC/komodo-daemon/releases/download/v0.9.2-2/komodo-0.9.2-2-linux.tar.gz")
                == "https://github.com/GLEECBTC/komodo-daemon/releases/tag/v0.9.2-2")
        #expect(InputEvent.releaseNotes(forDownload: "https://bitcoincore.org/bin/bitcoin-core-31.1/x.tar.gz") == nil)
        #expect(InputEvent.releaseNotes(forDownload: "https://github.com/o/r/archive/v1.tar.gz") == nil)
        #expect(InputEvent.releaseNotes(forDownload: "http://github.com/o/r/releases/download/v1/x") == nil)
    }

    @Test func lockFillsInWhatTheRecipeLeavesOut() throws {
        var lock = LockFile()
        lock.inputs["https://example.invalid/b.bin"] = Self.locked
        let inputs = try RemoteInputs.collect(recipes(), lock: lock)
        #expect(inputs.map(\.sha256) == [Self.pinned, Self.locked])
        #expect(inputs.map(\.pinnedInRecipe) == [true, false])
    }

    @Test func recipeAndLockDisagreeingIsAnErrorUnlessLocking() throws {
        var lock = LockFile()
        lock.inputs["https://example.invalid/a.bin"] = Self.locked
        #expect(throws: RecipeError.self) { try RemoteInputs.collect(recipes(), lock: lock) }
        let locking = try RemoteInputs.collect(recipes(), lock: lock, recipesWin: true)
        #expect(locking.first?.sha256 == Self.pinned)
    }

    /// A cache decision the user did not ask to see goes to the logger the caller put in the options (what
    /// `kiln build --verbose` shows), not to a static one.
    @Test func aCacheHitIsLoggedToTheCallersLogger() async throws {
        try await withTemporaryDirectory("kiln-inputs-log") { tmp in
            let cache = DownloadCache(root: tmp.path)
            let bytes = Data("cached input".utf8)
            let digest = Digest.sha256(bytes)
            try FileManager.default.createDirectory(atPath: tmp.path + "/sha256", withIntermediateDirectories: true)
            try bytes.write(to: URL(fileURLWithPath: cache.path(for: digest)))
            let captured = CapturedLog()
            let input = RemoteInput(
                url: "https://example.invalid/c.bin", sha256: digest,
                location: SourceLocation(file: "/r/a.yaml", line: 1, column: 1), pinnedInRecipe: true)
            let options = InputOptions(
                cache: cache, offline: true, http: HTTPOptions(logger: captured.logger(level: .debug)))
            let resolved = try await RemoteInputs.fetch([input], options: options)
            #expect(resolved == [input.url: digest])
            #expect(captured.contains("input \(input.url): in the download cache as \(digest)", at: .debug))
        }
    }
}
