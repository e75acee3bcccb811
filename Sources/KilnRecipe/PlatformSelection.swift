import KilnOCI

/// Which items go into which platform's image. A layer or an `add` entry may name `platforms:`; everything
/// else goes into every platform's image. Planning, fetching, building and the SBOM all select through here,
/// so they agree on what each platform gets.
extension LayerSpec {
    /// Whether `platform` takes this layer at all.
    public func applies(to platform: Platform) -> Bool {
        platforms.map { $0.contains(platform) } ?? true
    }

    /// The items `platform` takes (none when the layer is for other platforms).
    public func items(for platform: Platform) -> [LayerItem] {
        guard applies(to: platform) else { return [] }
        return items.filter { $0.applies(to: platform) }
    }

    /// The layer as `platform` builds it, or nil when it adds nothing there.
    public func selected(for platform: Platform) -> LayerSpec? {
        var layer = self
        layer.items = items(for: platform)
        return layer.items.isEmpty ? nil : layer
    }
}

extension LayerItem {
    public func applies(to platform: Platform) -> Bool {
        guard case .add(let add) = self, let platforms = add.platforms else { return true }
        return platforms.contains(platform)
    }
}

extension Recipe {
    /// Every item some platform of the recipe takes, layer by layer: what must be fetched and checked before a
    /// build of `platforms`.
    public var selectedLayers: [LayerSpec] {
        layers.compactMap { layer in
            var selected = layer
            selected.items = layer.items.filter { item in
                platforms.contains { layer.applies(to: $0) && item.applies(to: $0) }
            }
            return selected.items.isEmpty ? nil : selected
        }
    }

    /// The recipe narrowed to `wanted` (`kiln build --platform`), or nil when it builds none of them.
    public func narrowed(to wanted: [Platform]) -> Recipe? {
        let kept = platforms.filter { wanted.contains($0) }
        guard !kept.isEmpty else { return nil }
        var recipe = self
        recipe.narrowedFrom = declaredPlatforms
        recipe.platforms = kept
        return recipe
    }
}
