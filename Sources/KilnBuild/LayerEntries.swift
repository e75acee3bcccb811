import Foundation
import KilnDebian
import KilnLayer
import KilnOCI
import KilnRecipe
import KilnSandbox

/// The concrete entries of a planned layer: recipe items, downloaded files and archive members, unpacked
/// Debian packages with their dpkg status, or the accounts files.
extension Builder {
    /// Unpacked package sets of one image × platform, so a set split into many layers is unpacked once.
    typealias Unpacked = [String: [(pin: PinnedPackage, unpacked: UnpackedPackage)]]

    func entries(_ layer: PlannedLayer, recipe: Recipe, platform: Platform, unpacked: inout Unpacked) throws
        -> [LayerEntry]
    {
        if layer.kind == .accounts {
            return Accounts.entries(for: recipe, chain: prepared.plan.chain(of: recipe)) ?? []
        }
        guard let index = layer.spec, recipe.layers.indices.contains(index), layer.pending != true,
            let spec = recipe.layers[index].selected(for: platform)
        else {
            throw BuildError.internalError("layer \(layer.name) of \(recipe.name) was not prepared")
        }
        if layer.kind == .package {
            guard let item = layer.items.first, let key = item.key, let name = item.name,
                let package = try packages(key, spec: spec, unpacked: &unpacked).first(where: { $0.pin.name == name })
            else { throw BuildError.recipe(spec.location, "package layer \(layer.name) was not prepared") }
            let one = [package.unpacked]
            return try package.unpacked.entries + StatusDatabase.entries(one) + PostInstall.entries(one)
        }
        var result: [LayerEntry] = []
        for case .packages(let set) in spec.items where set.split != "per-package" {
            guard let key = layer.items.first(where: { $0.kind == .packages })?.key else { continue }
            let packages = try packages(key, spec: spec, unpacked: &unpacked).map(\.unpacked)
            result +=
                try packages.flatMap(\.entries) + StatusDatabase.entries(packages) + PostInstall.entries(packages)
        }
        return result + (try itemEntries(spec, recipe: recipe, platform: platform))
    }

    private func packages(_ key: String, spec: LayerSpec, unpacked: inout Unpacked) throws -> [(
        pin: PinnedPackage, unpacked: UnpackedPackage
    )] {
        if let done = unpacked[key] { return done }
        guard let resolved = prepared.packages[key] else {
            throw BuildError.recipe(
                spec.location, "package set \(key) was not resolved before the build (internal: run prepare)")
        }
        do {
            unpacked[key] = try resolved.unpack()
        } catch {
            throw BuildError.recipe(spec.location, "\(error)")
        }
        return unpacked[key] ?? []
    }

    /// Entries of a recipe layer's items other than package sets.
    func itemEntries(_ spec: LayerSpec, recipe: Recipe, platform: Platform) throws -> [LayerEntry] {
        var entries: [LayerEntry] = []
        for item in spec.items {
            switch item {
            case .add(let add):
                let added: [LayerEntry]
                switch add.source {
                case .local(let pattern):
                    let paths = LocalSources.matches(pattern, in: recipe.directory)
                    for path in paths {
                        guard let link = LocalSources.escape(path, in: recipe.directory) else { continue }
                        throw RecipeError([LocalSources.escapeDiagnostic(add.location, path: path, link: link)])
                    }
                    added = try LocalSources.entries(
                        matching: paths, isGlob: pattern.contains(where: { "*?[".contains($0) }), destination: add.to,
                        mode: add.ownership.mode, uid: add.ownership.uid, gid: add.ownership.gid)
                case .remote(let url, let pinned, let extract):
                    added = try remoteEntries(
                        add, url: url, digest: pinned ?? prepared.inputs[url], extract: extract)
                case .build(let name, let path):
                    added = try buildOutputEntries(add, recipe: recipe, build: name, path: path)
                }
                if !options.allowForeignBinaries {
                    try ForeignBinaries.check(added, platform: platform, location: add.location)
                }
                entries += added
            case .directory(let dir):
                entries.append(
                    LayerEntry(
                        path: dir.path, kind: .directory, mode: dir.ownership.mode ?? 0o755, uid: dir.ownership.uid,
                        gid: dir.ownership.gid))
            case .symlink(let link):
                entries.append(LayerEntry(path: link.path, kind: .symlink(target: link.target), mode: 0o777))
            case .file(let file):
                entries.append(
                    LayerEntry(
                        path: file.path, kind: .file(.bytes(Data(file.content.utf8))),
                        mode: file.ownership.mode ?? 0o644,
                        uid: file.ownership.uid, gid: file.ownership.gid))
            case .packages:
                break  // unpacked above
            }
        }
        return entries
    }

    /// A downloaded file (placed at `to`, or `to/<file name>` when `to` ends with `/`), or members of a
    /// downloaded archive.
    func remoteEntries(_ add: AddSpec, url: String, digest: Digest?, extract: [String]?) throws -> [LayerEntry] {
        let downloads = options.inputs.cache
        guard let digest, downloads.contains(digest) else {
            throw BuildError.recipe(
                add.location, "input \(url) has not been fetched: run `kiln build` with network or --sources")
        }
        let file = downloads.path(for: digest)
        // The cache names files by their verified content: no need to read them again to key the layer.
        digests.record(file, digest: digest)
        guard let extract else {
            let name = URL(string: url)?.lastPathComponent ?? "download"
            let path = add.to.hasSuffix("/") ? LocalSources.join(add.to, name) : add.to
            return [
                LayerEntry(
                    path: path, kind: .file(.path(file)), mode: add.ownership.mode ?? 0o644, uid: add.ownership.uid,
                    gid: add.ownership.gid)
            ]
        }
        let unpacked: ArchiveInputs.Unpacked
        do {
            unpacked = try ArchiveInputs.unpack(digest, patterns: extract, limit: add.unpackLimit, cache: downloads)
        } catch let error as LayerError {
            throw BuildError.recipe(add.location, "archive \(url): \(error)")
        }
        return try ArchiveInputs.entries(
            unpacked, patterns: extract, destination: add.to, ownership: add.ownership, archiveURL: url,
            location: add.location)
    }
}

extension Builder {
    /// `add: {from: BUILD, src: PATH, to: DEST}`: the output as stored by `Pipeline.compile`, placed like a
    /// local file or directory.
    func buildOutputEntries(_ add: AddSpec, recipe: Recipe, build: String, path: String) throws -> [LayerEntry] {
        guard let compiled = outputs["\(recipe.name)/\(build)"] else {
            throw BuildError.recipe(add.location, "build \(build) has not run (internal: run compile)")
        }
        let resolved: String
        do {
            resolved = try StepOutputs.resolve(path, in: compiled.directory, build: build)
        } catch let error as SandboxError {
            throw BuildError.recipe(add.location, "\(error)")
        }
        return try LocalSources.entries(
            matching: [resolved], isGlob: false, destination: add.to, mode: add.ownership.mode,
            uid: add.ownership.uid, gid: add.ownership.gid)
    }
}
