import Foundation
import KilnTestSupport
import Testing

/// `kiln lock` and `kiln build --locked` as a CI gate uses them: the lock always written, `--locked` tagging all
/// or nothing, a lock that cannot be written failing before the first tag, `--platform` never retagging.
@Suite struct LockedBuildTests {
    /// The golden recipes (two images, local files only: no remote input at all), locked and built.
    struct Fixture {
        let tmp: TemporaryDirectory
        var recipes: String { tmp.path + "/recipes" }
        var store: String { tmp.path + "/images" }
        var lock: String { recipes + "/kiln.lock" }

        /// The fixture in a temporary directory of its own, removed after `body`.
        static func with<T>(_ body: (Fixture) async throws -> T) async throws -> T {
            try await withTemporaryDirectory("kiln-locked") { try await body(Fixture(in: $0)) }
        }

        init(in tmp: TemporaryDirectory) throws {
            self.tmp = tmp
            try Shell.run(["cp", "-R", KilnBinary.packageRoot + "/Tests/Fixtures/golden", recipes])
        }

        @discardableResult func kiln(_ arguments: [String], check: Bool = true) throws -> CommandResult {
            try KilnBinary.run(
                arguments + ["--store", store], environment: ["SOURCE_DATE_EPOCH": ""], directory: tmp.path,
                check: check)
        }

        /// `kiln ARGS` with the recipe directory mounted read-only (bubblewrap: read-only even for root).
        func kilnReadOnlyRecipes(_ arguments: [String]) throws -> CommandResult {
            try Shell.run(
                ["bwrap", "--dev-bind", "/", "/", "--ro-bind", recipes, recipes, KilnBinary.path] + arguments + [
                    "--store", store,
                ], environment: ["SOURCE_DATE_EPOCH": ""], directory: tmp.path, check: false)
        }

        func lockedImages() throws -> [String: String] {
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: lock)))
            return (object as? [String: Any])?["images"] as? [String: String] ?? [:]
        }

        /// Changes what golden-app's layer holds.
        func changeApp() throws {
            let path = recipes + "/app.yaml"
            let text = try String(contentsOfFile: path, encoding: .utf8)
            try text.replacingOccurrences(of: "mode = test", with: "mode = changed")
                .write(toFile: path, atomically: true, encoding: .utf8)
        }
    }

    /// Recipes without a single remote input still get a lock from `kiln lock`, with every image's digest, and
    /// `kiln build --locked` of them then succeeds.
    @Test func lockRecordsImageDigestsWithoutRemoteInputs() async throws {
        try await Fixture.with { f in
            let locked = try f.kiln(["lock", f.recipes])
            #expect(locked.stdout.contains("2 image digests recorded"), "\(locked.stdout)")
            let images = try f.lockedImages()
            #expect(Set(images.keys) == ["golden-base", "golden-app"])
            // Nothing was tagged by `kiln lock`.
            #expect(try KilnBinary.imageDigests(f.store).isEmpty)
            let built = try f.kiln(["build", f.recipes, "--locked"])
            #expect(built.succeeded)
            let tagged = try KilnBinary.imageDigests(f.store)
            #expect(tagged["golden-app:2.0.0"] == images["golden-app"])
            #expect(tagged["golden-base:1.0.0"] == images["golden-base"])
            // A second `kiln lock` changes nothing and says so.
            #expect(try f.kiln(["lock", f.recipes]).stdout.contains("already pins all 0 inputs and 2 image digests"))
        }
    }

    /// `--locked` after a content change: every image is built and compared first, so the base (which still
    /// matches) is not tagged either, not even when it was untagged just before.
    @Test func lockedTagsNothingWhenAnyImageDiffers() async throws {
        try await Fixture.with { f in
            try f.kiln(["lock", f.recipes])
            try f.kiln(["build", f.recipes, "--locked"])
            let before = try KilnBinary.imageDigests(f.store)
            try f.kiln(["untag", "golden-base:1.0.0"])
            try f.changeApp()
            let result = try f.kiln(["build", f.recipes, "--locked"], check: false)
            #expect(result.status == 1)
            #expect(result.stderr.contains("1 of 2 images differ"), "\(result.stderr)")
            #expect(result.stderr.contains("golden-app:2.0.0 builds to"))
            #expect(result.stderr.contains("nothing was tagged"))
            var after = before
            after["golden-base:1.0.0"] = nil
            #expect(try KilnBinary.imageDigests(f.store) == after, "no tag came back, none moved")
            // With --json the failure is the JSON envelope, exit code 1.
            let json = try f.kiln(["build", f.recipes, "--locked", "--json"], check: false)
            let document = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            #expect(document?["exitCode"] as? Int == 1)
        }
    }

    /// A lock that must change but cannot be written (a read-only checkout) fails the build before any tag; an
    /// unchanged lock is not written at all, so the same read-only checkout builds.
    @Test func unwritableLockFailsBeforeTheFirstTag() async throws {
        try await Fixture.with { f in
            try f.kiln(["lock", f.recipes])
            let locked = try String(contentsOfFile: f.lock, encoding: .utf8)
            let unchanged = try f.kilnReadOnlyRecipes(["build", f.recipes])
            #expect(unchanged.status == 0, "\(unchanged.stderr)")
            let before = try KilnBinary.imageDigests(f.store)
            #expect(before.count == 3)
            try f.changeApp()
            let refused = try f.kilnReadOnlyRecipes(["build", f.recipes])
            #expect(refused.status == 2, "\(refused.stderr)")
            #expect(refused.stderr.contains("cannot write the lock \(f.lock)"), "\(refused.stderr)")
            #expect(refused.stderr.contains("nothing was tagged"))
            #expect(try KilnBinary.imageDigests(f.store) == before)
            #expect(try String(contentsOfFile: f.lock, encoding: .utf8) == locked)
            #expect(try FileManager.default.contentsOfDirectory(atPath: f.recipes).filter { $0.hasPrefix(".") } == [])
        }
    }

    /// `--platform` narrows a multi-platform recipe: the narrowed image gets its own tags (`1-arm64`), and the
    /// multi-platform tag keeps pointing at the index.
    @Test func platformBuildNeverRetagsTheMultiPlatformImage() async throws {
        try await withTemporaryDirectory("kiln-narrow") { tmp in
            try tmp.write(
                "r/multi.yaml",
                """
                name: multi
                version: "1"
                tags: [latest]
                platforms: [linux/amd64, linux/arm64]
                layers:
                  - name: files
                    files:
                      - {path: /etc/multi, content: "x\\n"}
                """)
            let store = tmp.path + "/images"
            let first = try KilnBinary.run(["build", tmp.path + "/r", "--store", store])
            // The summary counts both platforms' layers, one per line printed above it.
            let counts = try #require(
                first.stdout.firstMatch(of: #/\((\d+) layers? written, (\d+) reused\)/#), "\(first.stdout)")
            #expect(Int(counts.1)! + Int(counts.2)! == 2, "\(first.stdout)")
            let full = try KilnBinary.imageDigests(store)
            let plan = try KilnBinary.run([
                "build", tmp.path + "/r", "--platform", "linux/arm64", "--dry-run", "--store", store,
            ]).stdout
            #expect(plan.contains("multi:1-arm64"), "\(plan)")
            try KilnBinary.run(["build", tmp.path + "/r", "--platform", "linux/arm64", "--store", store])
            let after = try KilnBinary.imageDigests(store)
            #expect(after["multi:1"] == full["multi:1"] && after["multi:latest"] == full["multi:latest"])
            let narrowed = try #require(after["multi:1-arm64"])
            #expect(narrowed != full["multi:1"])
            #expect(after["multi:latest-arm64"] == narrowed)
            // The narrowed tag is an arm64 manifest, not an index.
            let listing = try KilnBinary.run(["images", "--json", "--store", store]).stdout
            let images = try #require(
                (try JSONSerialization.jsonObject(with: Data(listing.utf8)) as? [String: Any])?["images"]
                    as? [[String: Any]])
            let row = try #require(images.first { $0["reference"] as? String == "multi:1-arm64" })
            #expect(row["platforms"] as? [String] == ["linux/arm64"])
        }
    }

    /// `gc` says how much it kept only because of `--grace`, and `--grace 0` frees it.
    @Test func gcReportsWhatTheGracePeriodKept() async throws {
        try await Fixture.with { f in
            try f.kiln(["build", f.recipes])
            try f.kiln(["untag", "golden-app:2.0.0", "golden-app:stable"])
            let kept = try f.kiln(["gc"])
            #expect(kept.stdout.contains("freed 0 B in 0 blobs"), "\(kept.stdout)")
            #expect(kept.stdout.contains("younger than --grace 3600 s"), "\(kept.stdout)")
            let json = try f.kiln(["gc", "--dry-run", "--json"]).stdout
            let document = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            let report = try #require(document["kept"] as? [String: Any])
            #expect((report["blobs"] as? Int ?? 0) > 0 && report["graceSeconds"] as? Double == 3600)
            let freed = try f.kiln(["gc", "--grace", "0"])
            #expect(!freed.stdout.contains("freed 0 B"), "\(freed.stdout)")
            #expect(!freed.stdout.contains("younger than"))
            #expect(try f.kiln(["gc", "--grace", "-1"], check: false).status == 64)
        }
    }
}
