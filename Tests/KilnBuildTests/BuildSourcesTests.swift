import Foundation
import KilnDebian
import KilnRecipe
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnBuild

/// Git sources of build steps: fetched with git by commit where there is network (a local `file://`
/// repository stands in for GitHub), or taken from a `--sources` archive; always checked against the tree.
@Suite struct BuildSourcesTests {
    struct Repository {
        var url: String
        var old: (commit: String, tree: String)
        var head: (commit: String, tree: String)
    }

    /// Two commits; the source is pinned to the older one, so fetching "whatever the branch is" would be caught.
    func repository(_ tmp: TemporaryDirectory) throws -> Repository {
        let path = tmp.path + "/upstream"
        let git = { (args: [String]) in
            try Shell.run(
                ["git", "-C", path] + args,
                environment: [
                    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
                    "GIT_COMMITTER_EMAIL": "t@example.invalid",
                ]
            ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        try tmp.write("upstream/Makefile", "all:\n\techo old\n")
        _ = try git(["init", "-q"])
        _ = try git(["add", "-A"])
        _ = try git(["commit", "-q", "-m", "old"])
        let old = (try git(["rev-parse", "HEAD"]), try git(["rev-parse", "HEAD^{tree}"]))
        try tmp.write("upstream/Makefile", "all:\n\techo new\n")
        _ = try git(["commit", "-q", "-am", "new"])
        let head = (try git(["rev-parse", "HEAD"]), try git(["rev-parse", "HEAD^{tree}"]))
        return Repository(url: "file://" + path, old: old, head: head)
    }

    func source(_ url: String, commit: String, tree: String?) throws -> (BuildSource, Recipe) {
        let yaml = """
            name: a
            version: '1'
            builds:
              - name: b
                environment: {suite: bookworm, packages: [make]}
                sources:
                  up: {git: "\(url)", commit: \(commit)\(tree.map { ", tree: \($0)" } ?? "")}
                run: make
                outputs: [/out/x]
            layers:
              - name: l
                add: [{from: b, src: x, to: /x}]
            """
        let (recipes, problems) = RecipeSet.parse(yaml, file: "/r/a.yaml")
        #expect(problems.isEmpty, "\(problems)")
        let recipe = try #require(recipes.first)
        return (recipe.builds[0].sources[0], recipe)
    }

    /// `sources: {x: {dir: lnk}}` with `lnk -> /etc` in the recipe directory: the lexical check passes, the
    /// real path does not, and the host's /etc is never bound into the step.
    @Test func aDirectorySourceThroughASymlinkOutOfTheRecipeIsRefused() async throws {
        try await withTemporaryDirectory("kiln-dir-source") { tmp in
            try tmp.write("recipe/inside/main.c", "int main(void) { return 0; }\n")
            #expect(symlink("/etc", tmp.path + "/recipe/lnk") == 0)
            #expect(symlink("inside", tmp.path + "/recipe/alias") == 0)
            func resolve(_ dir: String) throws -> ResolvedSource {
                let yaml = """
                    name: a
                    version: '1'
                    builds:
                      - name: b
                        environment: {suite: bookworm, packages: [make]}
                        sources:
                          app: {dir: \(dir)}
                        run: "true"
                        outputs: [/out/x]
                    layers:
                      - name: l
                        add: [{from: b, src: x, to: /x}]
                    """
                let file = tmp.path + "/recipe/a.yaml"
                try yaml.write(toFile: file, atomically: true, encoding: .utf8)
                let (recipes, problems) = RecipeSet.parse(yaml, file: file)
                try #require(problems.isEmpty, "\(problems)")
                let recipe = try #require(recipes.first)
                return try BuildSources.resolve(
                    recipe.builds[0].sources[0], directory: recipe.directory,
                    options: InputOptions(cache: DownloadCache(root: tmp.path + "/cache")))
            }
            do {
                _ = try resolve("lnk")
                Issue.record("a source leading to /etc was accepted")
            } catch BuildError.recipe(let location, let reason) {
                // Located at the source's line (`app: {dir: lnk}`, line 7), formatted as compilers print.
                #expect(location.file == tmp.path + "/recipe/a.yaml" && location.line == 7, "\(location)")
                #expect(reason.contains("leads outside the recipe directory"), "\(reason)")
                #expect(
                    "\(BuildError.recipe(location, reason))"
                        == "\(tmp.path)/recipe/a.yaml:7:\(location.column): error: \(reason)")
            }
            // A symlink that stays inside is followed, and the real path is what gets bound.
            let inside = try resolve("alias")
            #expect(inside.directory.hasSuffix("/recipe/inside"))
        }
    }

    @Test func fetchesExactlyThePinnedCommitWithGitAndChecksItsTree() async throws {
        try await withTemporaryDirectory("kiln-gitsrc") { tmp in
            let repo = try repository(tmp)
            let options = InputOptions(cache: DownloadCache(root: tmp.path + "/cache"))
            // Without `tree:` the tree git reports is used (and the extracted content checked against it).
            let (unpinned, recipe) = try source(repo.url, commit: repo.old.commit, tree: nil)
            let resolved = try BuildSources.resolve(unpinned, directory: recipe.directory, options: options)
            #expect(resolved.id == "git-tree:" + repo.old.tree)
            #expect(
                try String(contentsOfFile: resolved.directory + "/Makefile", encoding: .utf8) == "all:\n\techo old\n")
            // A pinned tree that is not the commit's: refused, naming both.
            let (wrong, _) = try source(repo.url, commit: repo.old.commit, tree: repo.head.tree)
            let fresh = InputOptions(cache: DownloadCache(root: tmp.path + "/cache2"))
            #expect {
                try BuildSources.resolve(wrong, directory: recipe.directory, options: fresh)
            } throws: { error in
                "\(error)".contains(repo.head.tree) && "\(error)".contains(repo.old.tree)
            }
            // Offline and no archive: says where to put one.
            let offline = InputOptions(cache: DownloadCache(root: tmp.path + "/cache3"), offline: true)
            #expect {
                try BuildSources.resolve(unpinned, directory: recipe.directory, options: offline)
            } throws: { error in
                "\(error)".contains("--sources")
            }
        }
    }

    @Test func takesAnArchiveOfTheCommitFromSourcesWithoutGit() async throws {
        try await withTemporaryDirectory("kiln-gitsrc-archive") { tmp in
            let repo = try repository(tmp)
            try FileManager.default.createDirectory(atPath: tmp.path + "/sources", withIntermediateDirectories: true)
            try Shell.run([
                "git", "-C", tmp.path + "/upstream", "archive", "--prefix=up-\(repo.old.commit)/",
                "-o", tmp.path + "/sources/up-\(repo.old.commit).tar.gz", repo.old.commit,
            ])
            // An unreachable URL: only the archive can satisfy it.
            let (pinned, recipe) = try source("file:///nonexistent", commit: repo.old.commit, tree: repo.old.tree)
            let options = InputOptions(
                cache: DownloadCache(root: tmp.path + "/cache"), sources: [tmp.path + "/sources"], offline: true)
            let resolved = try BuildSources.resolve(pinned, directory: recipe.directory, options: options)
            #expect(resolved.id == "git-tree:" + repo.old.tree)
            #expect(FileManager.default.fileExists(atPath: resolved.directory + "/Makefile"))
        }
    }

    /// A url source whose archive cannot be extracted: the error names the recipe line of the source (it was a
    /// bare `error: …` with no location before errors carried one).
    @Test func anUnreadableSourceArchiveIsReportedAtTheSourceLine() async throws {
        try await withTemporaryDirectory("kiln-bad-archive") { tmp in
            try tmp.write("sources/app.tar.gz", "not an archive")
            let digest = try FileDigests.hash(tmp.path + "/sources/app.tar.gz")
            let yaml = """
                name: a
                version: '1'
                builds:
                  - name: b
                    environment: {suite: bookworm, packages: [make]}
                    sources:
                      app: {url: "https://example.invalid/app.tar.gz", sha256: "\(digest.encoded)"}
                    run: "true"
                    outputs: [/out/x]
                layers:
                  - name: l
                    add: [{from: b, src: x, to: /x}]
                """
            let (recipes, problems) = RecipeSet.parse(yaml, file: tmp.path + "/a.yaml")
            try #require(problems.isEmpty, "\(problems)")
            let recipe = try #require(recipes.first)
            let options = InputOptions(
                cache: DownloadCache(root: tmp.path + "/cache"), sources: [tmp.path + "/sources"])
            do {
                _ = try BuildSources.resolve(recipe.builds[0].sources[0], directory: recipe.directory, options: options)
                Issue.record("a file that is no archive was extracted")
            } catch BuildError.recipe(let location, let reason) {
                #expect(location.file == tmp.path + "/a.yaml" && location.line == 7, "\(location)")
                #expect(reason.hasPrefix("source app: "), "\(reason)")
            }
        }
    }
}
