import Foundation
import KilnDebian
import KilnLayer
import KilnOCI
import KilnRecipe

extension Pipeline {
    /// One image: its references, base, per platform the layers it adds with their contents and what it and
    /// its base recipes were made from, and the job the build stage assembles it by. `chain` is the recipe and
    /// its bases, nearest first; `pins` gives each package set known so far by its lock key (split sets
    /// without pins are planned as one pending layer).
    static func image(_ recipe: Recipe, chain: [Recipe], plan: BuildPlan, pins: [String: [PinnedPackage]])
        -> PlannedImage
    {
        let references = tags(recipe, options: plan.options).map { "\(recipe.name):\($0)" }
        var job = ImageJob(
            platforms: recipe.platforms, compression: recipe.compression.flatMap(LayerCompression.init(rawValue:)),
            settings: recipe.settings, annotations: annotations(recipe), reset: recipe.reset,
            narrowed: recipe.platforms != recipe.declaredPlatforms)
        let base: PlannedBase
        let baseLocation = recipe.baseLocation ?? recipe.location
        switch recipe.base {
        case .scratch: base = PlannedBase(kind: .scratch)
        case .recipe(let name):
            base = PlannedBase(kind: .recipe, name: name)
            job.base = .recipe(name, baseLocation)
        case .image(let reference, let digest):
            base = PlannedBase(kind: .image, name: reference, digest: digest)
            job.base = .image(reference: reference, digest: digest, baseLocation)
        }
        var inputs: [String: Digest] = [:]
        for input in plan.inputs { inputs[input.url] = input.sha256 }
        let accounts = Accounts.entries(for: recipe, chain: chain)
        let platforms = recipe.platforms.map { platform in
            var layers = recipe.layers.enumerated().flatMap { index, spec in
                spec.selected(for: platform).map {
                    LayerPlan.layers($0, index: index, recipe: recipe, platform: platform, pins: pins, inputs: inputs)
                } ?? []
            }
            if let accounts {
                var layer = PlannedLayer(
                    name: "accounts", kind: .accounts, items: accounts.map(PlannedItem.init(entry:)))
                layer.contents = accounts.map(LayerContent.entry)
                layers.append(layer)
            }
            var planned = PlannedPlatform(platform: platform.description, layers: layers)
            planned.dependencies = chain.map { dependencies($0, platform: platform) }
            return planned
        }
        var image = PlannedImage(
            name: recipe.name, version: plan.options.version ?? recipe.version, references: references, base: base,
            platforms: platforms, ports: recipe.settings.exposedPorts.map { $0.keys.sorted() },
            lockedDigest: plan.lock.image(recipe.name))
        image.job = job
        return image
    }

    /// What the image's manifests and index carry besides their creation time: the recipe's annotations, its
    /// name, its source label and its registry base. The version and revision are not content: they label the
    /// tag, so an unchanged recipe built as a new version keeps its digest.
    static func annotations(_ recipe: Recipe) -> [String: String] {
        var result = recipe.annotations
        result[AnnotationKey.title] = recipe.name
        if let source = recipe.settings.labels?[AnnotationKey.source] { result[AnnotationKey.source] = source }
        if case .image(let reference, let digest) = recipe.base {
            result[AnnotationKey.baseName] = reference
            result[AnnotationKey.baseDigest] = digest.description
        }
        return result
    }

    /// One recipe of an image's chain on `platform`: its layers' downloads and package sets, its steps' sources.
    static func dependencies(_ recipe: Recipe, platform: Platform) -> RecipeDependencies {
        let layers = recipe.layers.compactMap { $0.selected(for: platform) }.map { layer in
            var downloads: [(url: String, extract: [String]?)] = []
            for case .add(let add) in layer.items {
                if case .remote(let url, _, let extract) = add.source { downloads.append((url, extract)) }
            }
            let hasPackages = layer.items.contains { if case .packages = $0 { true } else { false } }
            return RecipeDependencies.Layer(
                downloads: downloads,
                packageSet: hasPackages ? DebianPackages.key(recipe, layer: layer.name, platform: platform) : nil)
        }
        return RecipeDependencies(file: recipe.file, layers: layers, sources: recipe.builds.flatMap(\.sources))
    }
}
