import Foundation
import KilnBuild
import KilnOCI
import KilnRecipe

/// `kiln build --dry-run`: what would be built, from what, without reading or fetching anything.
enum Plan {
    struct Image: Encodable {
        var name: String
        var version: String
        var base: String
        var platforms: [String]
        var layers: [Layer]
        var lockedDigest: String?
    }

    struct Layer: Encodable {
        var name: String
        var items: [String]
    }

    struct Input: Encodable {
        var url: String
        var sha256: String?
        var pinnedBy: String
    }

    struct Document: Encodable {
        var images: [Image]
        var inputs: [Input]
    }

    static func print(_ recipes: [Recipe], inputs: [RemoteInput], lock: LockFile, json: Bool) throws {
        let images = recipes.map { recipe in
            Image(
                name: recipe.name, version: recipe.version, base: describe(recipe.base),
                platforms: recipe.platforms.map(\.description),
                layers: recipe.layers.map { Layer(name: $0.name, items: $0.items.map(describe)) },
                lockedDigest: lock.images["\(recipe.name):\(recipe.version)"]?.description)
        }
        let document = Document(
            images: images,
            inputs: inputs.map {
                Input(
                    url: $0.url, sha256: $0.sha256?.description,
                    pinnedBy: $0.pinnedInRecipe ? "recipe" : ($0.sha256 == nil ? "nothing (run kiln lock)" : "lock"))
            })
        if json { return try Output.json(document) }
        for image in images {
            Output.line("\(image.name):\(image.version)  base \(image.base)  \(image.platforms.joined(separator: ","))")
            if let digest = image.lockedDigest { Output.line("  locked \(digest)") }
            for layer in image.layers {
                Output.line("  layer \(layer.name)")
                for item in layer.items { Output.line("    \(item)") }
            }
        }
        Output.line("\(inputs.count) remote inputs:")
        for input in document.inputs {
            Output.line("  \(input.sha256 ?? "unpinned")  \(input.url)  (\(input.pinnedBy))")
        }
    }

    static func describe(_ base: Base) -> String {
        switch base {
        case .scratch: return "scratch"
        case .recipe(let name): return name
        case .image(let reference, let digest): return "\(reference)@\(digest)"
        }
    }

    static func describe(_ item: LayerItem) -> String {
        switch item {
        case .add(let add):
            switch add.source {
            case .local(let pattern): return "add \(pattern) → \(add.to)"
            case .remote(let url, let sha256, let extract):
                let members = extract.map { " [\($0.joined(separator: ", "))]" } ?? ""
                return "add \(url)\(members) → \(add.to)" + (sha256.map { " \($0)" } ?? "")
            case .build(let name, let path): return "add \(path) from build \(name) → \(add.to)"
            }
        case .directory(let dir): return "dir \(dir.path)"
        case .symlink(let link): return "symlink \(link.path) → \(link.target)"
        case .file(let file): return "file \(file.path) (\(file.content.utf8.count) bytes)"
        case .packages(let set): return "debian \(set.suite): \(set.packages.joined(separator: " "))"
        }
    }
}
