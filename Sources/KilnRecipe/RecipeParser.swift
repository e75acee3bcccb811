import Foundation
import KilnOCI
import Yams

/// Reads one recipe document into a `Recipe`, collecting every problem instead of stopping at the first.
struct RecipeParser {
    let file: String
    var diagnostics: [Diagnostic] = []
    /// Every build name written, valid or not, so a broken build is not reported again by each `from:`.
    var buildNames: Set<String> = []

    static let topLevelKeys = [
        "name", "version", "tags", "platforms", "base", "layers", "users", "groups", "env", "entrypoint", "cmd",
        "workdir", "user", "ports", "volumes", "labels", "stop-signal", "annotations", "compression", "matrix", "reset",
        "builds",
    ]

    init(file: String) { self.file = file }

    mutating func parse(_ root: Node) -> Recipe? {
        guard let fields = mapping(root, "a recipe", allowed: Self.topLevelKeys) else { return nil }
        let location = loc(root)
        var name: String?
        var version: String?
        var recipe = Recipe(
            name: "", version: "", tags: [], platforms: [.linuxAMD64], base: .scratch, layers: [], users: [],
            groups: [], settings: .init(), annotations: [:], compression: nil, file: file, location: location)
        for (key, keyNode, value) in fields {
            switch key {
            case "name": name = imageName(value)
            case "version": version = tag(value, "version")
            case "tags": recipe.tags = (stringList(value, "tags") ?? []).compactMap { t in tag(value, "tag", t) }
            case "platforms":
                recipe.platforms = (stringList(value, "platforms") ?? []).compactMap { p in platform(value, p) }
                platformsCheck(value, recipe.platforms)
            case "base":
                recipe.baseLocation = loc(value)
                if let b = base(value) { recipe.base = b }
            case "layers": recipe.layers = layers(value)
            case "users": recipe.users = users(value)
            case "groups": recipe.groups = groups(value)
            case "env": recipe.settings.env = env(value)
            case "entrypoint": recipe.settings.entrypoint = stringList(value, "entrypoint", allowScalar: false)
            case "cmd": recipe.settings.cmd = stringList(value, "cmd", allowScalar: false)
            case "workdir": recipe.settings.workingDir = absolutePath(value, "workdir")
            case "user": recipe.settings.user = user(value)
            case "ports": recipe.settings.exposedPorts = ports(value)
            case "volumes":
                if let list = stringList(value, "volumes") {
                    recipe.settings.volumes = Dictionary(
                        list.compactMap { v in absolutePath(value, "volume", v).map { ($0, EmptyObject()) } },
                        uniquingKeysWith: { a, _ in a })
                }
            case "labels": recipe.settings.labels = stringMap(value, "labels")
            case "stop-signal": recipe.settings.stopSignal = signal(value)
            case "annotations": recipe.annotations = stringMap(value, "annotations") ?? [:]
            case "compression":
                if let c = string(value, "compression") {
                    if ["gzip", "zstd", "none"].contains(c) {
                        recipe.compression = c
                    } else {
                        report(
                            value, "unknown compression '\(c)'", hint: "write gzip (the portable default), zstd or none"
                        )
                    }
                }
            case "reset":
                for item in stringList(value, "reset") ?? [] {
                    if ["ports", "volumes", "labels", "env"].contains(item) {
                        recipe.reset.insert(item)
                    } else {
                        report(
                            value, "'\(item)' cannot be reset",
                            hint: "list inherited settings to drop: ports, volumes, labels or env")
                    }
                }
            case "builds": recipe.builds = builds(value)
            case "matrix": break  // expanded before parsing (Matrix.swift)
            default: _ = keyNode
            }
        }
        if let name {
            recipe.name = name
        } else if !fields.contains(where: { $0.key == "name" }) {
            report(root, "a recipe needs a name", hint: "add `name: komodod` (lower case, digits, . _ -)")
        }
        if let version {
            recipe.version = version
        } else if !fields.contains(where: { $0.key == "version" }) {
            report(root, "a recipe needs a version", hint: "add `version: 1.0.0` (it becomes the image tag)")
        }
        if !fields.contains(where: { $0.key == "base" }) && recipe.layers.isEmpty
            && !fields.contains(where: { $0.key == "layers" }) && fields.contains(where: { $0.key == "name" })
        {
            report(
                root, "an image from scratch needs at least one layer", hint: "add a `layers:` list, or name a `base:`")
        }
        checkBuildInputs(recipe)
        checkPlatformSelectors(recipe)
        var seenLayers: [String: SourceLocation] = [:]
        for layer in recipe.layers {
            if let first = seenLayers[layer.name] {
                diagnostics.append(
                    Diagnostic(
                        layer.location, "duplicate layer name '\(layer.name)' (first at line \(first.line))",
                        hint: "give each layer its own name"))
            }
            seenLayers[layer.name] = layer.location
        }
        return recipe
    }

    // MARK: Sections

    mutating func base(_ node: Node) -> Base? {
        guard let text = string(node, "base") else { return nil }
        if text == "scratch" { return .scratch }
        if let at = text.range(of: "@") {
            guard let digest = try? Digest(parsing: String(text[at.upperBound...])) else {
                report(
                    node, "'\(text)' has a malformed digest", hint: "pin as REGISTRY/NAME:TAG@sha256:<64 hex digits>")
                return nil
            }
            return .image(reference: String(text[..<at.lowerBound]), digest: digest)
        }
        if text.contains("/") || text.contains(":") {
            report(
                node, "base image '\(text)' is not pinned by digest",
                hint:
                    "a tag can move; pin it: run `skopeo inspect docker://\(text)` and write `base: \(text)@sha256:<its Digest>`"
            )
            return nil
        }
        return .recipe(text)
    }

    mutating func layers(_ node: Node) -> [LayerSpec] {
        guard let items = sequence(node, "layers") else { return [] }
        return items.compactMap { item in
            guard
                let fields = mapping(
                    item, "a layer", allowed: ["name", "platforms", "add", "dirs", "symlinks", "files", "packages"])
            else { return nil }
            var name: String?
            var entries: [LayerItem] = []
            var selector: [Platform]?
            for (key, _, value) in fields {
                switch key {
                case "name": name = string(value, "layer name")
                case "platforms": selector = platformSelector(value)
                case "add": entries += (sequence(value, "add") ?? []).compactMap { add($0).map(LayerItem.add) }
                case "dirs": entries += (sequence(value, "dirs") ?? []).compactMap { dir($0).map(LayerItem.directory) }
                case "symlinks":
                    entries += (sequence(value, "symlinks") ?? []).compactMap { symlink($0).map(LayerItem.symlink) }
                case "files":
                    entries += (sequence(value, "files") ?? []).compactMap { fileSpec($0).map(LayerItem.file) }
                case "packages": if let p = packages(value) { entries.append(.packages(p)) }
                default: break
                }
            }
            guard let name else {
                report(item, "a layer needs a name", hint: "add `name: …`: it names the layer in history and errors")
                return nil
            }
            if entries.isEmpty && !fields.contains(where: { $0.key != "name" }) {
                report(
                    item, "layer '\(name)' adds nothing",
                    hint: "give it `add`, `dirs`, `symlinks`, `files` or `packages`")
            }
            return LayerSpec(name: name, items: entries, location: loc(item), platforms: selector)
        }
    }

    static let ownershipKeys = ["mode", "uid", "gid"]

    mutating func ownership(_ fields: [(key: String, keyNode: Node, value: Node)]) -> Ownership {
        var result = Ownership(mode: nil, uid: 0, gid: 0)
        for (key, _, value) in fields {
            switch key {
            case "mode": result.mode = mode(value)
            case "uid": result.uid = id(value, "uid") ?? 0
            case "gid": result.gid = id(value, "gid") ?? 0
            default: break
            }
        }
        return result
    }

    mutating func add(_ node: Node) -> AddSpec? {
        guard
            let fields = mapping(
                node, "an add entry",
                allowed: ["src", "url", "sha256", "extract", "unpack-limit", "to", "from", "platforms"]
                    + Self.ownershipKeys)
        else { return nil }
        let value = { (key: String) in fields.first { $0.key == key }?.value }
        guard let toNode = value("to"), let to = absolutePath(toNode, "to") else {
            if value("to") == nil {
                report(node, "missing `to`", hint: "say where it goes in the image, e.g. `to: /usr/local/bin/`")
            }
            return nil
        }
        let source: AddSpec.Source
        switch (value("src"), value("url")) {
        case _ where value("from") != nil:
            guard let build = buildInput(fields, node: node) else { return nil }
            source = build
        case (let src?, nil):
            for key in ["sha256", "extract", "unpack-limit"] where value(key) != nil {
                report(
                    value(key)!, "`\(key)` applies to `url` inputs only",
                    hint: "remove it, or fetch the file with `url:`")
            }
            guard let pattern = string(src, "src") else { return nil }
            if pattern.hasPrefix("/") || pattern.split(separator: "/").contains("..") {
                report(
                    src, "`src` must stay inside the recipe's directory", hint: "use a path relative to the recipe file"
                )
                return nil
            }
            source = .local(pattern: pattern)
        case (nil, let urlNode?):
            guard let url = string(urlNode, "url") else { return nil }
            guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
                report(urlNode, "'\(url)' is not an http(s) URL", hint: "write the full https:// address")
                return nil
            }
            var digest: Digest?
            if let shaNode = value("sha256"), let hex = string(shaNode, "sha256") {
                let text = hex.hasPrefix("sha256:") ? String(hex.dropFirst(7)) : hex
                digest = try? Digest(sha256Hex: text)
                if digest == nil {
                    report(
                        shaNode, "'\(hex)' is not a sha256",
                        hint: "write the 64 lower-case hex digits of the file's sha256")
                }
            }
            let extract = value("extract").flatMap { stringList($0, "extract") }
            source = .remote(url: url, sha256: digest, extract: extract)
        case (nil, nil):
            report(
                node, "an add entry needs `src` or `url`",
                hint: "write `src: path/relative/to/recipe` or `url: https://…` with `sha256:`")
            return nil
        case (_?, _?):
            report(node, "an add entry takes `src` or `url`, not both", hint: "split it into two entries")
            return nil
        }
        var spec = AddSpec(source: source, to: to, ownership: ownership(fields), location: loc(node))
        if let limit = value("unpack-limit") { spec.unpackLimit = byteSize(limit, "unpack-limit") }
        if let selector = value("platforms") { spec.platforms = platformSelector(selector) }
        return spec
    }

    /// `12345`, or a number with a binary suffix: `512M`, `20G`, `1T` (also `MiB`, `GiB`, `TiB`).
    mutating func byteSize(_ node: Node, _ what: String) -> Int64? {
        guard let text = string(node, what) else { return nil }
        let units: [(String, Int64)] = [
            ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("T", 1 << 40), ("G", 1 << 30),
            ("M", 1 << 20), ("K", 1 << 10), ("", 1),
        ]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            if let value = Int64(number), value > 0, value <= Int64.max / factor { return value * factor }
            break
        }
        report(node, "\(what) '\(text)' is not a size", hint: "write bytes, or a number with K, M, G or T, e.g. `20G`")
        return nil
    }

    mutating func dir(_ node: Node) -> DirectorySpec? {
        if case .scalar = node, let path = absolutePath(node, "dir") {
            return DirectorySpec(path: path, ownership: Ownership(mode: nil, uid: 0, gid: 0), location: loc(node))
        }
        guard let fields = mapping(node, "a directory", allowed: ["path"] + Self.ownershipKeys) else { return nil }
        guard let pathNode = fields.first(where: { $0.key == "path" })?.value, let path = absolutePath(pathNode, "path")
        else {
            report(node, "a directory needs a `path`", hint: "write `path: /data`")
            return nil
        }
        return DirectorySpec(path: path, ownership: ownership(fields), location: loc(node))
    }

    mutating func symlink(_ node: Node) -> SymlinkSpec? {
        guard let fields = mapping(node, "a symlink", allowed: ["path", "target"]) else { return nil }
        let path = fields.first { $0.key == "path" }.flatMap { absolutePath($0.value, "path") }
        let target = fields.first { $0.key == "target" }.flatMap { string($0.value, "target") }
        guard let path, let target else {
            report(node, "a symlink needs `path` and `target`", hint: "write `path: /bin/sh` and `target: busybox`")
            return nil
        }
        return SymlinkSpec(path: path, target: target, location: loc(node))
    }

    mutating func fileSpec(_ node: Node) -> FileSpec? {
        guard let fields = mapping(node, "a file", allowed: ["path", "content"] + Self.ownershipKeys) else {
            return nil
        }
        let path = fields.first { $0.key == "path" }.flatMap { absolutePath($0.value, "path") }
        let content = fields.first { $0.key == "content" }.flatMap { string($0.value, "content") }
        guard let path, let content else {
            report(
                node, "a file needs `path` and `content`",
                hint: "write `path: /etc/app.conf` and `content: |` with the text")
            return nil
        }
        return FileSpec(path: path, content: content, ownership: ownership(fields), location: loc(node))
    }

    mutating func packages(_ node: Node) -> PackageSetSpec? {
        guard
            let fields = mapping(
                node, "a package set", allowed: ["suite", "components", "packages", "mirror", "keyring", "split"])
        else { return nil }
        let value = { (key: String) in fields.first { $0.key == key }?.value }
        guard let suiteNode = value("suite"), let suite = string(suiteNode, "suite") else {
            report(node, "a package set needs a `suite`", hint: "write e.g. `suite: bookworm`")
            return nil
        }
        let list = value("packages").flatMap { stringList($0, "packages") } ?? []
        if list.isEmpty {
            report(node, "a package set needs `packages`", hint: "list them, e.g. `packages: [libc6, libgomp1]`")
        }
        let split = value("split").flatMap { string($0, "split") } ?? "none"
        if !["none", "per-package"].contains(split), let n = value("split") {
            report(n, "unknown split '\(split)'", hint: "write none (one layer) or per-package")
        }
        return PackageSetSpec(
            suite: suite, components: value("components").flatMap { stringList($0, "components") } ?? ["main"],
            packages: list, mirror: value("mirror").flatMap { string($0, "mirror") },
            keyring: value("keyring").flatMap { string($0, "keyring") }, split: split, location: loc(node))
    }
}
