import Foundation
import KilnTestSupport
import Testing

@testable import KilnSandbox

/// Git tree ids computed here against git itself, and the real dPoW archive against its published tree.
@Suite struct GitTreeTests {
    static let dPoWCommit = TestSources.dPoWCommit
    static let dPoWTree = "e8aa547cd2a9c0b418d1082bbabbe4f75aad79a2"

    /// The archive (TestSources finds it); the tests that read it are skipped, saying why, when it is not at hand.
    static var dPoWArchive: String {
        get throws { try TestSources.dPoWArchive() }
    }

    /// A small repository with what makes tree ids tricky: executables, symlinks, nested and empty
    /// directories, and names that sort differently as files and as directories (`a`, `a-b`, `a.c`, `a0`).
    func makeRepository(_ tmp: TemporaryDirectory) throws -> (path: String, tree: String) {
        let repo = tmp.path + "/repo"
        try tmp.write("repo/README", "hello\n")
        try tmp.write("repo/run.sh", "#!/bin/sh\necho run\n", mode: 0o755)
        try tmp.write("repo/a/inner.c", "int x;\n")
        try tmp.write("repo/a-b", "dash\n")
        try tmp.write("repo/a.c", "dot\n")
        try tmp.write("repo/a0/deep/er/file", "")
        try FileManager.default.createDirectory(atPath: repo + "/empty/dir", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: repo + "/link", withDestinationPath: "a/inner.c")
        let git = { (args: [String]) in
            try Shell.run(
                ["git", "-C", repo] + args,
                environment: [
                    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
                    "GIT_COMMITTER_EMAIL": "t@example.invalid",
                ]
            ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        _ = try git(["init", "-q"])
        _ = try git(["add", "-A"])
        let tree = try git(["write-tree"])
        _ = try git(["commit", "-q", "-m", "x"])
        return (repo, tree)
    }

    @Test func matchesGitForEveryKindOfEntryAndEveryFormOfTheSource() async throws {
        try await withTemporaryDirectory("kiln-gittree") { tmp in
            let (repo, tree) = try makeRepository(tmp)
            // The clone itself (`.git` is not part of the tree; the empty directory is not either).
            #expect(try GitTree.id(of: repo) == tree)
            // `git archive` with a prefix (what ../shared/sources holds) and without one, as tar and as zip.
            try Shell.run(["git", "-C", repo, "archive", "--prefix=repo-abc/", "-o", tmp.path + "/p.tar.gz", "HEAD"])
            try Shell.run(["git", "-C", repo, "archive", "-o", tmp.path + "/n.tar", "HEAD"])
            try Shell.run(["git", "-C", repo, "archive", "-o", tmp.path + "/z.zip", "HEAD"])
            for name in ["p.tar.gz", "n.tar", "z.zip"] {
                let out = tmp.path + "/x-" + name
                try SourceTree.extract(archive: tmp.path + "/" + name, into: out)
                #expect(try SourceTree.verifiedRoot(of: out, tree: tree, source: name).hasPrefix(out), "\(name)")
            }
        }
    }

    @Test(.enabled(if: TestSources.runnable, Comment(rawValue: TestSources.skipReason)))
    func theRealDPoWArchiveHasItsCommitsTree() async throws {
        try await withTemporaryDirectory("kiln-dpow") { tmp in
            try SourceTree.extract(archive: try Self.dPoWArchive, into: tmp.path + "/x")
            let root = try SourceTree.verifiedRoot(of: tmp.path + "/x", tree: Self.dPoWTree, source: "dPoW")
            #expect(root == tmp.path + "/x/dPoW-\(Self.dPoWCommit)")
            #expect(FileManager.default.fileExists(atPath: root + "/iguana/Makefile"))
            #expect(FileManager.default.fileExists(atPath: root + "/iguana/elected"))
        }
    }

    @Test(.enabled(if: TestSources.runnable, Comment(rawValue: TestSources.skipReason)))
    func aTamperedArchiveIsRefusedNamingBothTrees() async throws {
        try await withTemporaryDirectory("kiln-dpow-tampered") { tmp in
            try SourceTree.extract(archive: try Self.dPoWArchive, into: tmp.path + "/x")
            let root = SourceTree.contentRoot(of: tmp.path + "/x")
            // One byte appended to one file, repacked the way GitHub would (a different compressor, too).
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/iguana/elected"))
            handle.seekToEndOfFile()
            handle.write(Data(" ".utf8))
            try handle.close()
            try Shell.run(["tar", "-C", tmp.path + "/x", "-cJf", tmp.path + "/t.tar.xz", "."])
            try SourceTree.extract(archive: tmp.path + "/t.tar.xz", into: tmp.path + "/y")
            do {
                _ = try SourceTree.verifiedRoot(of: tmp.path + "/y", tree: Self.dPoWTree, source: "dPoW (tampered)")
                Issue.record("a tampered archive was accepted")
            } catch let error as SandboxError {
                guard case .treeMismatch(_, let expected, let actual) = error else {
                    Issue.record("unexpected \(error)")
                    return
                }
                #expect(expected == Self.dPoWTree)
                #expect(GitTree.isObjectID(actual) && actual != expected)
                #expect(error.description.contains(Self.dPoWTree) && error.description.contains(actual))
            }
            // Only the executable bit changed: a different tree too (the mode is part of git's identity).
            try SourceTree.extract(archive: try Self.dPoWArchive, into: tmp.path + "/z")
            let z = SourceTree.contentRoot(of: tmp.path + "/z")
            let before = try GitTree.id(of: z)
            #expect(before == Self.dPoWTree)
            chmod(z + "/iguana/Makefile", 0o755)
            #expect(try GitTree.id(of: z) != before)
        }
    }

    /// The one lookup of the test sources: `KILN_TEST_SOURCES` first, then `shared/sources` beside the package or
    /// a directory above it; nothing found is a failure that names every place tried and what to provide.
    @Test func testSourcesAreFoundInOrderOrExplained() async throws {
        try await withTemporaryDirectory("kiln-test-sources") { tmp in
            let package = tmp.path + "/work/wt/kiln"
            try FileManager.default.createDirectory(atPath: package, withIntermediateDirectories: true)
            let cache = tmp.path + "/cache"
            func find(_ environment: [String: String]) -> Result<String, TestSources.Missing> {
                TestSources.find(environment: environment, packageRoot: package, cache: cache, fetching: false)
            }
            guard case .failure(let missing) = find([:]) else {
                Issue.record("found an archive in an empty tree")
                return
            }
            #expect(missing.description.contains("KILN_TEST_SOURCES (not set)"))
            #expect(missing.description.contains(tmp.path + "/work/wt/shared/sources"))
            #expect(missing.description.contains("set KILN_TEST_SOURCES to a directory holding it"))
            // Beside a directory above the package (a worktree of a checkout that has ../shared).
            try tmp.write("work/shared/sources/" + TestSources.dPoWArchiveName, "")
            #expect(try find([:]).get() == tmp.path + "/work/shared/sources")
            // The variable wins.
            try tmp.write("given/" + TestSources.dPoWArchiveName, "")
            #expect(try find(["KILN_TEST_SOURCES": tmp.path + "/given"]).get() == tmp.path + "/given")
        }
    }
}
