import Foundation
import KilnOCI
import Yams

/// The `builds:` section and `add: {from: BUILD}` entries; see `BuildSpec`.
extension RecipeParser {
    static let buildKeys = ["name", "environment", "sources", "run", "outputs", "env", "timeout", "limits"]

    mutating func builds(_ node: Node) -> [BuildSpec] {
        guard let items = sequence(node, "builds") else { return [] }
        var seen: [String: SourceLocation] = [:]
        return items.compactMap { item -> BuildSpec? in
            guard let fields = mapping(item, "a build", allowed: Self.buildKeys) else { return nil }
            let value = { (key: String) in fields.first { $0.key == key }?.value }
            guard let nameNode = value("name") else {
                report(item, "a build needs a name", hint: "add `name: iguana-build`: layers take its outputs by it")
                return nil
            }
            if case .scalar(let s) = nameNode { buildNames.insert(s.string) }
            guard let name = word(nameNode, "build name") else { return nil }
            if let first = seen[name] {
                report(nameNode, "duplicate build name '\(name)' (first at line \(first.line))", hint: "rename one")
            }
            seen[name] = loc(item)
            let environment = buildEnvironment(value("environment"), item: item)
            let sources = value("sources").map { buildSources($0) } ?? []
            let run = buildCommand(value("run"), item: item)
            let outputs = buildOutputs(value("outputs"), item: item)
            var env: [String: String] = [:]
            if let envNode = value("env"), let fields = mapping(envNode, "a build's env", allowed: nil) {
                for (key, keyNode, v) in fields {
                    guard key.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil else {
                        report(keyNode, "'\(key)' is not a variable name", hint: "use letters, digits and _")
                        continue
                    }
                    if let text = string(v, "env value") { env[key] = text }
                }
            }
            var timeout = BuildSpec.defaultTimeout
            if let t = value("timeout") {
                if case .scalar(let s) = t, let seconds = Int(s.string), (1...86400).contains(seconds) {
                    timeout = seconds
                } else {
                    report(t, "timeout must be a number of seconds from 1 to 86400", hint: "write e.g. `timeout: 1800`")
                }
            }
            let limits = value("limits").map { buildLimits($0) } ?? BuildLimits()
            guard let environment, let run, let outputs else { return nil }
            return BuildSpec(
                name: name, environment: environment, sources: sources, run: run, outputs: outputs, env: env,
                timeout: timeout, limits: limits, location: loc(item))
        }
    }

    /// `limits: {tmp: 4GiB, disk: 20GiB, log: 64MiB, processes: 2048}`.
    mutating func buildLimits(_ node: Node) -> BuildLimits {
        var limits = BuildLimits()
        guard let fields = mapping(node, "a build's limits", allowed: ["tmp", "disk", "log", "processes"]) else {
            return limits
        }
        for (key, _, value) in fields {
            guard let text = string(value, key) else { continue }
            if key == "processes" {
                guard let count = Int(text), (16...1_000_000).contains(count) else {
                    report(value, "processes must be a number from 16 to 1000000", hint: "write e.g. `processes: 2048`")
                    continue
                }
                limits.processes = count
                continue
            }
            guard let bytes = BuildLimits.bytes(text), bytes >= 1 << 20 else {
                report(
                    value, "'\(text)' is not a size of at least 1MiB for `\(key)`",
                    hint: "write a whole number with a binary unit, e.g. `\(key): 4GiB` or `\(key): 512MiB`")
                continue
            }
            switch key {
            case "tmp": limits.tmp = bytes
            case "disk": limits.disk = bytes
            default: limits.log = bytes
            }
        }
        return limits
    }

    mutating func buildEnvironment(_ node: Node?, item: Node) -> PackageSetSpec? {
        guard let node else {
            report(
                item, "a build needs an `environment`",
                hint: "give it a Debian package set: `environment: {suite: bookworm, packages: [gcc, make]}`")
            return nil
        }
        if case .mapping(let map) = node, let split = map.first(where: { $0.key.string == "split" }) {
            report(split.key, "`split` has no meaning for a build environment", hint: "remove it")
        }
        return packages(node)
    }

    mutating func buildSources(_ node: Node) -> [BuildSource] {
        guard let fields = mapping(node, "a build's sources", allowed: nil) else { return [] }
        return fields.compactMap { key, keyNode, value in
            guard key.range(of: #"^[a-z0-9][a-z0-9._-]*$"#, options: .regularExpression) != nil else {
                report(
                    keyNode, "'\(key)' cannot name a source",
                    hint: "use lower-case letters, digits and . _ - (it is mounted at /src/NAME)")
                return nil
            }
            return buildSource(key, value)
        }
    }

    mutating func buildSource(_ name: String, _ node: Node) -> BuildSource? {
        guard
            let fields = mapping(
                node, "source '\(name)'", allowed: ["git", "commit", "tree", "url", "sha256", "dir"])
        else { return nil }
        let value = { (key: String) in fields.first { $0.key == key }?.value }
        let given = ["git", "url", "dir"].filter { value($0) != nil }
        guard given.count == 1 else {
            report(
                node,
                given.isEmpty
                    ? "source '\(name)' needs `git`, `url` or `dir`"
                    : "source '\(name)' takes one of "
                        + "`git`, `url` or `dir`, not \(given.map { "`\($0)`" }.joined(separator: " and "))",
                hint: "write `{git: https://…, commit: <40 hex>}`, `{url: https://…, sha256: …}` or `{dir: path}`")
            return nil
        }
        let allowedWith = ["git": ["commit", "tree"], "url": ["sha256"], "dir": []][given[0]]!
        for (key, keyNode, _) in fields where key != given[0] && !allowedWith.contains(key) {
            report(keyNode, "`\(key)` does not apply to a `\(given[0])` source", hint: "remove it")
        }
        let location = loc(node)
        switch given[0] {
        case "git":
            guard let url = string(value("git")!, "git") else { return nil }
            guard let commitNode = value("commit") else {
                report(
                    node, "git source '\(name)' is not pinned to a commit",
                    hint: "add `commit:` with the full 40-digit id (`git rev-parse HEAD`): a branch or tag can move")
                return nil
            }
            guard let commit = objectID(commitNode, "commit") else { return nil }
            let tree = value("tree").flatMap { objectID($0, "tree") }
            if value("tree") != nil && tree == nil { return nil }
            return BuildSource(name: name, kind: .git(url: url, commit: commit, tree: tree), location: location)
        case "url":
            guard let url = string(value("url")!, "url") else { return nil }
            guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
                report(value("url")!, "'\(url)' is not an http(s) URL", hint: "write the full https:// address")
                return nil
            }
            guard let shaNode = value("sha256"), let hex = string(shaNode, "sha256") else {
                report(node, "source '\(name)' needs a `sha256`", hint: "add the 64 hex digits of the archive's sha256")
                return nil
            }
            guard let digest = try? Digest(sha256Hex: hex.hasPrefix("sha256:") ? String(hex.dropFirst(7)) : hex)
            else {
                report(shaNode, "'\(hex)' is not a sha256", hint: "write the 64 lower-case hex digits of its sha256")
                return nil
            }
            return BuildSource(name: name, kind: .archive(url: url, sha256: digest), location: location)
        default:
            guard let path = string(value("dir")!, "dir") else { return nil }
            if path.hasPrefix("/") || path.split(separator: "/").contains("..") {
                report(
                    value("dir")!, "`dir` must stay inside the recipe's directory",
                    hint: "use a path relative to the recipe file")
                return nil
            }
            return BuildSource(name: name, kind: .directory(path: path), location: location)
        }
    }

    mutating func buildCommand(_ node: Node?, item: Node) -> BuildCommand? {
        switch node {
        case nil:
            report(item, "a build needs `run`", hint: "write a shell script (`run: |`) or an argv list")
            return nil
        case .scalar(let s)?:
            return .script(s.string)
        case .sequence?:
            guard let argv = stringList(node!, "run"), !argv.isEmpty else {
                if case .sequence(let seq)? = node, seq.isEmpty {
                    report(node!, "`run` is an empty list", hint: "give the program and its arguments")
                }
                return nil
            }
            return .argv(argv)
        default:
            report(node!, "run must be a script or a list, not a map", hint: "write `run: |` and the script below")
            return nil
        }
    }

    mutating func buildOutputs(_ node: Node?, item: Node) -> [String]? {
        guard let node else {
            report(item, "a build needs `outputs`", hint: "list what it makes, e.g. `outputs: [/out/iguana]`")
            return nil
        }
        guard let list = stringList(node, "outputs") else { return nil }
        if list.isEmpty { report(node, "`outputs` is empty", hint: "list what the build makes, under /out") }
        var outputs: [String] = []
        for path in list {
            guard let clean = absolutePath(node, "output", path) else { return nil }
            guard clean.hasPrefix("/out/") || clean.hasPrefix("/work/") else {
                report(
                    node, "output '\(path)' is outside /out and /work",
                    hint: "a build writes its results under /out (or names files it left in /work)")
                return nil
            }
            outputs.append(clean.hasSuffix("/") ? String(clean.dropLast()) : clean)
        }
        return outputs
    }

    /// `add: {from: BUILD, src: PATH, to: DEST}`: `src` is relative to /out, or an absolute output path.
    mutating func buildInput(_ fields: [(key: String, keyNode: Node, value: Node)], node: Node) -> AddSpec.Source? {
        let value = { (key: String) in fields.first { $0.key == key }?.value }
        for key in ["url", "sha256", "extract"] where value(key) != nil {
            report(value(key)!, "`\(key)` does not apply to `from:` (a build's output)", hint: "remove it")
        }
        guard let build = string(value("from")!, "from") else { return nil }
        guard let srcNode = value("src"), let src = string(srcNode, "src") else {
            report(node, "`from: \(build)` needs `src`", hint: "name the output, e.g. `src: iguana` for /out/iguana")
            return nil
        }
        let path = src.hasPrefix("/") ? src : "/out/" + src
        if path.split(separator: "/").contains("..") {
            report(srcNode, "`src` must not contain '..'", hint: "name the output's path")
            return nil
        }
        return .build(name: build, path: path.hasSuffix("/") ? String(path.dropLast()) : path)
    }

    /// Every `from:` names a build of the recipe and one of its outputs (or a path under one).
    mutating func checkBuildInputs(_ recipe: Recipe) {
        let builds = Dictionary(recipe.builds.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for layer in recipe.layers {
            for case .add(let add) in layer.items {
                guard case .build(let name, let path) = add.source else { continue }
                guard let build = builds[name] else {
                    if buildNames.contains(name) { continue }  // reported where the build is written
                    let known = recipe.builds.map(\.name)
                    diagnostics.append(
                        Diagnostic(
                            add.location, "no build named '\(name)' in this recipe",
                            hint: known.isEmpty
                                ? "add it under `builds:`" : "builds here: \(known.joined(separator: ", "))"))
                    continue
                }
                if !build.outputs.contains(where: { path == $0 || path.hasPrefix($0 + "/") }) {
                    diagnostics.append(
                        Diagnostic(
                            add.location, "'\(path)' is not an output of build '\(name)'",
                            hint: "its outputs: \(build.outputs.joined(separator: ", "))"))
                }
            }
        }
    }

    mutating func word(_ node: Node, _ what: String) -> String? {
        guard let text = string(node, what) else { return nil }
        guard text.range(of: #"^[a-z0-9]+([._-][a-z0-9]+)*$"#, options: .regularExpression) != nil else {
            report(node, "'\(text)' is not a valid \(what)", hint: "use lower-case letters, digits and . _ -")
            return nil
        }
        return text
    }

    mutating func objectID(_ node: Node, _ what: String) -> String? {
        guard let text = string(node, what) else { return nil }
        guard text.count == 40, text.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            report(
                node, "\(what) '\(text)' is not a full git object id",
                hint: what == "tree"
                    ? "write the 40 lower-case hex digits of `git rev-parse COMMIT^{tree}`"
                    : "write the 40 lower-case hex digits (`git rev-parse HEAD`), not a branch, tag or short id")
            return nil
        }
        return text
    }
}
