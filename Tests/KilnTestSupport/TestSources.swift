import Foundation

/// The real upstream source archive some tests build from: dPoW (iguana) at the commit `recipes/iguana.yaml`
/// pins, as `dPoW-COMMIT.tar.gz` in a directory given to `kiln build --sources`. The one place that finds it:
///
/// 1. `$KILN_TEST_SOURCES` (a directory holding the archive);
/// 2. `shared/sources` beside the package root (`../shared/sources`, as CI has it), or beside a directory above
///    it (a worktree of such a checkout);
/// 3. an archive fetched earlier into `$TMPDIR/kiln-test-sources`;
/// 4. `git fetch` of the pinned commit from upstream, archived there (when the network allows).
///
/// When none works, the tests that need it are skipped, printing what to provide; with `KILN_REQUIRE_SOURCES=1`
/// (set by `.ci/run`) they run and fail instead, so CI never skips them.
public enum TestSources {
    public static let dPoWCommit = "2f846c0aa790516c49299914488623ecb31b1d2b"
    public static let dPoWRepository = "https://github.com/KomodoPlatform/dPoW"
    public static var dPoWArchiveName: String { "dPoW-\(dPoWCommit).tar.gz" }

    /// Where the archive was found, or why it was not.
    public static let lookup: Result<String, Missing> = find()

    public struct Missing: Error, CustomStringConvertible {
        public var tried: [String]
        public var description: String {
            "the dPoW source archive \(TestSources.dPoWArchiveName) was not found (tried: "
                + tried.joined(separator: "; ")
                + "). Provide it: set KILN_TEST_SOURCES to a directory holding it (make one with `git archive "
                + "--format=tar --prefix=dPoW-\(TestSources.dPoWCommit)/ \(TestSources.dPoWCommit) | gzip -n -9` in a "
                + "clone of \(TestSources.dPoWRepository)), or allow git to reach that repository."
        }
    }

    /// `KILN_REQUIRE_SOURCES=1`: a missing archive fails the tests that need it instead of skipping them.
    public static var required: Bool { ProcessInfo.processInfo.environment["KILN_REQUIRE_SOURCES"] == "1" }

    /// For `.enabled(if: TestSources.runnable, …)`: the archive is here, or it is required (and the test fails
    /// through `directory()`).
    public static var runnable: Bool {
        if case .success = lookup { return true }
        return required
    }

    /// Why a test that needs the archive was skipped.
    public static var skipReason: String {
        if case .failure(let missing) = lookup { return "skipped: \(missing)" }
        return "the dPoW source archive is at hand"
    }

    /// The directory holding the archive (for `--sources`); throws what to provide when there is none.
    public static func directory() throws -> String {
        try lookup.get()
    }

    /// The archive itself.
    public static func dPoWArchive() throws -> String {
        try directory() + "/" + dPoWArchiveName
    }

    /// The lookup, in order (see above). Parameters for its own tests: the environment, where the package is,
    /// the cache directory, and whether to try git at all.
    public static func find(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        packageRoot: String = KilnBinary.packageRoot,
        cache: String = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-test-sources").path,
        fetching: Bool = true
    ) -> Result<String, Missing> {
        var tried: [String] = []
        func holds(_ directory: String) -> Bool {
            FileManager.default.fileExists(atPath: directory + "/" + dPoWArchiveName)
        }
        if let given = environment["KILN_TEST_SOURCES"], !given.isEmpty {
            if holds(given) { return .success(given) }
            tried.append("KILN_TEST_SOURCES=\(given)")
        } else {
            tried.append("KILN_TEST_SOURCES (not set)")
        }
        var parent = URL(fileURLWithPath: packageRoot).deletingLastPathComponent()
        while true {
            let candidate = parent.appendingPathComponent("shared/sources").path
            if holds(candidate) { return .success(candidate) }
            tried.append(candidate)
            let up = parent.deletingLastPathComponent()
            if up.path == parent.path || parent.path == "/" { break }
            parent = up
        }
        if holds(cache) { return .success(cache) }
        tried.append(cache)
        if fetching {
            switch fetch(into: cache) {
            case .success: return .success(cache)
            case .failure(let reason): tried.append("git fetch of \(dPoWRepository) at \(dPoWCommit): \(reason)")
            }
            FileHandle.standardError.write(Data("kiln tests: \(Missing(tried: tried))\n".utf8))
        }
        return .failure(Missing(tried: tried))
    }

    struct FetchFailed: Error, CustomStringConvertible {
        var description: String
    }

    /// Fetches just the pinned commit (shallow) and archives it as the shared directory holds it.
    static func fetch(into cache: String) -> Result<Void, FetchFailed> {
        let work = cache + ".\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let archive = work + "/" + dPoWArchiveName
        let steps: [[String]] = [
            ["git", "init", "-q", work + "/repo"],
            ["timeout", "300", "git", "-C", work + "/repo", "fetch", "-q", "--depth", "1", dPoWRepository, dPoWCommit],
            [
                "sh", "-c",
                "git -C \"$1/repo\" archive --format=tar --prefix=dPoW-\(dPoWCommit)/ \(dPoWCommit) | gzip -n -9 > \"$2\"",
                "sh", work, archive,
            ],
        ]
        do {
            for step in steps {
                let result = try Shell.run(step, environment: ["GIT_TERMINAL_PROMPT": "0"], check: false)
                guard result.succeeded else {
                    let detail = result.stderr.split(separator: "\n").last.map(String.init) ?? "exit \(result.status)"
                    return .failure(FetchFailed(description: detail))
                }
            }
            try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
            guard rename(archive, cache + "/" + dPoWArchiveName) == 0 else {
                return .failure(FetchFailed(description: String(cString: strerror(errno))))
            }
            return .success(())
        } catch {
            return .failure(FetchFailed(description: "\(error)"))
        }
    }
}
