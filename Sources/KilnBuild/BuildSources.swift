import Foundation
import KilnDebian
import KilnOCI
import KilnRecipe
import KilnSandbox
import KilnStore

/// A build's source, on this machine and verified: the directory mounted at `/src/NAME` and the id that
/// stands for its content in the build's cache key.
struct ResolvedSource: Sendable {
    var name: String
    var directory: String
    /// `git-tree:<id>` (git sources and local directories alike: the tree id of the content), or
    /// `sha256:<hex>` of an archive.
    var id: String
}

/// Finds and verifies build sources. Git sources come as any archive of the pinned commit in a `--sources`
/// directory (a file whose name contains the commit id, e.g. GitHub's `dPoW-<commit>.tar.gz`), else (not
/// offline) that one commit fetched with git; url sources
/// from the download cache or a `--sources` directory by file name, checked against their sha256. Extracted
/// trees are kept under `<cache>/sources/<id>` so an unchanged source is extracted once.
enum BuildSources {
    /// `directory` is the recipe's: `dir:` sources are relative to it and must stay inside it.
    static func resolve(_ source: BuildSource, directory recipeDirectory: String, options: InputOptions) throws
        -> ResolvedSource
    {
        let at = source.location
        let what = "source \(source.name)"
        switch source.kind {
        case .directory(let path):
            let written = recipeDirectory + "/" + path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: written, isDirectory: &isDirectory), isDirectory.boolValue
            else { throw BuildError.recipe(at, "\(what): \(written) is not a directory") }
            // Bound into the sandbox by its real path, which must lie inside the recipe's directory: a symlink
            // in the recipe directory (`lnk -> /etc`) must not hand the host's files to the step.
            guard let directory = realPath(written), let home = realPath(recipeDirectory),
                directory == home || directory.hasPrefix(home + "/")
            else {
                throw BuildError.recipe(
                    at,
                    "\(what): \(path) leads outside the recipe directory (its real path is "
                        + "\(realPath(written) ?? "unknown")); copy the source into the recipe directory")
            }
            return ResolvedSource(
                name: source.name, directory: directory, id: "git-tree:" + (try GitTree.id(of: directory)))
        case .git(let url, let commit, let pinnedTree):
            if let tree = pinnedTree, FileManager.default.fileExists(atPath: root(options) + "/" + tree) {
                return ResolvedSource(name: source.name, directory: root(options) + "/" + tree, id: "git-tree:" + tree)
            }
            let archive = find(options.sources, where: { $0.contains(commit) })
            let scratch = root(options) + "/.fetch-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            if archive == nil {
                guard !options.offline else {
                    throw BuildError.recipe(
                        at,
                        "\(what): no archive of \(url) at commit \(commit) here (offline); put one (GitHub's "
                            + "tarball NAME-\(commit).tar.gz, or `git archive` output) in a --sources directory")
                }
                // Where there is network: the commit itself, with git; its tree as git reports it must be the
                // pinned one, and the archive is checked against it like any other.
                do {
                    try FileManager.default.createDirectory(atPath: root(options), withIntermediateDirectories: true)
                    let fetched = scratch + ".tar"
                    let gitTree = try GitFetch.archive(url: url, commit: commit, to: fetched, scratch: scratch)
                    defer { unlink(fetched) }
                    if let pinnedTree, pinnedTree != gitTree {
                        throw SandboxError.treeMismatch(
                            source: "\(url) at \(commit)", expected: pinnedTree, actual: gitTree)
                    }
                    try extract(fetched, to: root(options) + "/" + gitTree, for: source) { staging in
                        try SourceTree.verifiedRoot(of: staging, tree: gitTree, source: "\(url) at \(commit)")
                    }
                    return ResolvedSource(
                        name: source.name, directory: root(options) + "/" + gitTree, id: "git-tree:" + gitTree)
                } catch let error as SandboxError {
                    throw BuildError.recipe(
                        at, "\(what): \(error) (or put an archive of the commit in a --sources directory)")
                }
            }
            guard let tree = pinnedTree, let archive else {
                throw BuildError.recipe(
                    at,
                    "\(what): \(url) at \(commit) has no `tree:`; add the commit's tree id "
                        + "(`git rev-parse \(commit)^{tree}`) so any archive of the commit can be verified")
            }
            let extracted = root(options) + "/" + tree
            try extract(archive, to: extracted, for: source) { staging in
                try SourceTree.verifiedRoot(of: staging, tree: tree, source: "\(archive) (\(url) at \(commit))")
            }
            return ResolvedSource(name: source.name, directory: extracted, id: "git-tree:" + tree)
        case .archive(let url, let sha256):
            let extracted = root(options) + "/" + sha256.encoded
            if !FileManager.default.fileExists(atPath: extracted) {
                let name = URL(string: url)?.lastPathComponent ?? ""
                let cached = options.cache.contains(sha256) ? options.cache.path(for: sha256) : nil
                guard
                    let archive = cached
                        ?? find(options.sources, where: { $0 == name || $0 == sha256.encoded }).flatMap({
                            (try? FileDigests.hash($0)) == sha256 ? $0 : nil
                        })
                else {
                    throw BuildError.recipe(
                        at, "\(what): \(url) (\(sha256)) is not here; put \(name) in a --sources directory")
                }
                try extract(archive, to: extracted, for: source) { SourceTree.contentRoot(of: $0) }
            }
            return ResolvedSource(name: source.name, directory: extracted, id: sha256.description)
        }
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func root(_ options: InputOptions) -> String {
        options.cache.root + "/sources"
    }

    static func find(_ directories: [String], where matches: (String) -> Bool) -> String? {
        for directory in directories {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
            if let name = names.first(where: matches) { return directory + "/" + name }
        }
        return nil
    }

    /// Extracts into a temporary directory beside `destination`, lets `pick` choose (and verify) the content
    /// root inside it, and renames that into place: a source directory that exists is complete and verified.
    /// Failures are reported at `source`'s recipe line.
    static func extract(
        _ archive: String, to destination: String, for source: BuildSource, pick: (String) throws -> String
    ) throws {
        let parent = (destination as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let staging = parent + "/.tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: staging) }
        do {
            try SourceTree.extract(archive: archive, into: staging)
            try StagedDirectory.publish(try pick(staging), as: destination)
        } catch let error as SandboxError {
            throw BuildError.recipe(source.location, "source \(source.name): \(error)")
        } catch let error as StoreError {
            throw BuildError.recipe(source.location, "source \(source.name): cannot store \(destination): \(error)")
        }
    }
}
