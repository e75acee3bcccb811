import Foundation
import KilnDebian
import KilnLayer
import KilnOCI
import KilnRecipe

/// Which layers one recipe layer becomes. Planning and building both go through here, so the plan lists
/// exactly the layers the build writes.
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
        var combined = false
        for item in spec.items {
            guard case .packages(let set) = item else {
                items.append(PlannedItem(item, inputs: inputs))
                continue
            }
            let key = DebianPackages.key(recipe, layer: spec.name, platform: platform)
            let setItem = PlannedItem(kind: .packages, packages: set.packages, key: key, pins: pins[key])
            guard set.split == "per-package" else {
                combined = true
                items.append(setItem)
                continue
            }
            guard let pinned = pins[key] else {
                perPackage.append(
                    PlannedLayer(name: "\(spec.name)/*", kind: .package, spec: index, items: [setItem], pending: true))
                continue
            }
            for pin in pinned {
                perPackage.append(
                    PlannedLayer(
                        name: "\(spec.name)/\(pin.name)", kind: .package, spec: index,
                        items: [
                            PlannedItem(
                                kind: .package, sha256: try? Digest(parsing: "sha256:" + pin.sha256), name: pin.name,
                                version: pin.version, key: key)
                        ]))
            }
        }
        let others = spec.items.contains { if case .packages = $0 { false } else { true } }
        guard combined || others || perPackage.isEmpty else { return perPackage }
        return perPackage + [PlannedLayer(name: spec.name, kind: .layer, spec: index, items: items)]
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
