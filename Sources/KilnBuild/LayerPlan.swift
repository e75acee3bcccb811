import Foundation
import KilnDebian
import KilnLayer
import KilnOCI
import KilnRecipe

/// Which layers one recipe layer becomes, with their concrete contents: the build writes exactly these.
enum LayerPlan {
    /// The recipe layer itself, or with `split: per-package` one layer per package (sorted, named
    /// `LAYER/PACKAGE`, so recipes listing the same packages share those layers) and then the layer's other
    /// items, if any, in a layer of their own.
    static func layers(
        _ spec: LayerSpec, index: Int, recipe: Recipe, platform: Platform, pins: [String: [PinnedPackage]],
        inputs: [String: Digest]
    ) -> [PlannedLayer] {
        var perPackage: [PlannedLayer] = []
        var items: [PlannedItem] = []
        // A whole package set comes first in its layer, then the other items in the recipe's order.
        var sets: [LayerContent] = []
        var contents: [LayerContent] = []
        var combined = false
        for item in spec.items {
            guard case .packages(let set) = item else {
                items.append(PlannedItem(item, inputs: inputs))
                contents += content(item, recipe: recipe, inputs: inputs)
                continue
            }
            let key = DebianPackages.key(recipe, layer: spec.name, platform: platform)
            let setItem = PlannedItem(kind: .packages, packages: set.packages, key: key, pins: pins[key])
            guard set.split == "per-package" else {
                combined = true
                items.append(setItem)
                sets.append(.debs(set: key, location: spec.location))
                continue
            }
            guard let pinned = pins[key] else {
                var pending = PlannedLayer(
                    name: "\(spec.name)/*", kind: .package, spec: index, items: [setItem], pending: true)
                pending.contents = [.debs(set: key, location: spec.location)]
                perPackage.append(pending)
                continue
            }
            perPackage += pinned.map {
                packageLayer($0, layer: spec.name, index: index, key: key, location: spec.location)
            }
        }
        let others = spec.items.contains { if case .packages = $0 { false } else { true } }
        guard combined || others || perPackage.isEmpty else { return perPackage }
        var rest = PlannedLayer(name: spec.name, kind: .layer, spec: index, items: items)
        rest.contents = sets + contents
        return perPackage + [rest]
    }

    /// The layer of one package of a split set.
    static func packageLayer(
        _ pin: PinnedPackage, layer: String, index: Int?, key: String, location: SourceLocation
    ) -> PlannedLayer {
        var planned = PlannedLayer(
            name: "\(layer)/\(pin.name)", kind: .package, spec: index,
            items: [
                PlannedItem(
                    kind: .package, sha256: try? Digest(parsing: "sha256:" + pin.sha256), name: pin.name,
                    version: pin.version, key: key)
            ])
        planned.contents = [.package(set: key, name: pin.name, location: location)]
        return planned
    }

    /// What a recipe item other than a package set puts in its layer.
    static func content(_ item: LayerItem, recipe: Recipe, inputs: [String: Digest]) -> [LayerContent] {
        switch item {
        case .add(let add):
            let placement = Placement(
                to: add.to, ownership: add.ownership, unpackLimit: add.unpackLimit, location: add.location)
            switch add.source {
            case .local(let pattern):
                let files = LocalFiles(
                    pattern: pattern, directory: recipe.directory,
                    paths: LocalSources.matches(pattern, in: recipe.directory), location: add.location)
                return [.files(files, placement)]
            case .remote(let url, let sha256, let extract):
                return [.download(url: url, digest: sha256 ?? inputs[url], extract: extract, placement)]
            case .build(let name, let path):
                return [.buildOutput(build: "\(recipe.name)/\(name)", name: name, path: path, placement)]
            }
        case .directory(let dir):
            return [
                .entry(
                    LayerEntry(
                        path: dir.path, kind: .directory, mode: dir.ownership.mode ?? 0o755, uid: dir.ownership.uid,
                        gid: dir.ownership.gid))
            ]
        case .symlink(let link):
            return [.entry(LayerEntry(path: link.path, kind: .symlink(target: link.target), mode: 0o777))]
        case .file(let file):
            return [
                .entry(
                    LayerEntry(
                        path: file.path, kind: .file(.bytes(Data(file.content.utf8))),
                        mode: file.ownership.mode ?? 0o644, uid: file.ownership.uid, gid: file.ownership.gid))
            ]
        case .packages:
            return []
        }
    }
}

extension BuildPlan {
    /// The plan with every package set as prepared: a split set that was pending (not in the lock, or resolved
    /// again) becomes one layer per package it resolved to, and every layer is keyed by the packages as
    /// prepared. A set prepare did not fetch (every layer using it came from the cache) keeps the lock's pins.
    /// Reads only the plan.
    func settled(with packages: [String: [PinnedPackage]]) -> BuildPlan {
        var plan = self
        for index in plan.packageSets.indices {
            let key = plan.packageSets[index].key
            plan.packageSets[index].packages = packages[key] ?? plan.packageSets[index].packages
        }
        for i in plan.images.indices {
            for p in plan.images[i].platforms.indices {
                plan.images[i].platforms[p].layers = plan.images[i].platforms[p].layers.flatMap { layer in
                    guard layer.pending == true, case .debs(let key, let location)? = layer.contents.first,
                        let pins = packages[key]
                    else { return [layer] }
                    let name = String(layer.name.dropLast(2))  // `LAYER/*`
                    return pins.map {
                        LayerPlan.packageLayer($0, layer: name, index: layer.spec, key: key, location: location)
                    }
                }
            }
        }
        plan.keyBuilds()
        plan.keyLayers()
        return plan
    }
}

extension PlannedItem {
    /// A recipe item; a url input carries the sha256 the recipe or the lock pins it to.
    init(_ item: LayerItem, inputs: [String: Digest]) {
        switch item {
        case .add(let add):
            switch add.source {
            case .local(let pattern): self.init(kind: .add, path: add.to, source: pattern)
            case .remote(let url, let sha256, let extract):
                self.init(kind: .add, path: add.to, source: url, extract: extract, sha256: sha256 ?? inputs[url])
            case .build(let name, let path): self.init(kind: .add, path: add.to, source: "build \(name):\(path)")
            }
        case .directory(let dir): self.init(kind: .directory, path: dir.path)
        case .symlink(let link): self.init(kind: .symlink, path: link.path, target: link.target)
        case .file(let file): self.init(kind: .file, path: file.path, sha256: Digest.sha256(Data(file.content.utf8)))
        case .packages(let set): self.init(kind: .packages, packages: set.packages)
        }
    }

    /// A generated entry (accounts): files carry the digest of their bytes.
    init(entry: LayerEntry) {
        switch entry.kind {
        case .directory: self.init(kind: .directory, path: entry.path)
        case .symlink(let target), .hardlink(let target): self.init(kind: .symlink, path: entry.path, target: target)
        case .file(.bytes(let data)): self.init(kind: .file, path: entry.path, sha256: Digest.sha256(data))
        case .file(.path(let source)): self.init(kind: .add, path: entry.path, source: source)
        }
    }
}
