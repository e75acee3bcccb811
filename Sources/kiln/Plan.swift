import Foundation
import KilnBuild
import KilnOCI

/// `kiln build --dry-run`: the pipeline's plan, without reading or fetching anything. `--json` prints the
/// `BuildPlan` value itself.
enum PlanOutput {
    static func print(_ plan: BuildPlan, json: Bool) throws {
        if json { return try Output.json(plan) }
        for image in plan.images {
            let platforms = image.platforms.map(\.platform).joined(separator: ",")
            Output.line("\(image.references[0])  base \(describe(image.base))  \(platforms)")
            if let digest = image.lockedDigest { Output.line("  locked \(digest)") }
            for platform in image.platforms {
                if image.platforms.count > 1 { Output.line("  \(platform.platform)") }
                for layer in platform.layers {
                    let key = layer.key.map { "  key \($0)" } ?? ""
                    Output.line("  layer \(layer.name)\(layer.pending == true ? " (resolved when built)" : "")\(key)")
                    for item in layer.items { Output.line("    \(describe(item))") }
                }
            }
        }
        for build in plan.builds {
            Output.line(
                "build step \(build.id)  environment \(build.environment)  key \(build.key ?? "known when prepared")")
            for source in build.sources { Output.line("  source \(describe(source))") }
        }
        Output.line("\(plan.inputs.count) remote inputs:")
        for input in plan.inputs {
            Output.line("  \(input.sha256?.description ?? "unpinned")  \(input.url)  (\(input.pinnedBy.rawValue))")
        }
    }

    static func describe(_ base: PlannedBase) -> String {
        switch base.kind {
        case .scratch: return "scratch"
        case .recipe: return base.name ?? "?"
        case .image: return "\(base.name ?? "?")@\(base.digest?.description ?? "?")"
        }
    }

    static func describe(_ source: PlannedSource) -> String {
        if let git = source.git {
            return "\(source.name): \(git) at \(source.commit ?? "?")" + (source.tree.map { " (tree \($0))" } ?? "")
        }
        if let url = source.url { return "\(source.name): \(url) \(source.sha256?.description ?? "")" }
        return "\(source.name): dir \(source.dir ?? "")"
    }

    static func describe(_ item: PlannedItem) -> String {
        let digest = item.sha256.map { " \($0)" } ?? ""
        switch item.kind {
        case .add:
            let members = item.extract.map { " [\($0.joined(separator: ", "))]" } ?? ""
            return "add \(item.source ?? "")\(members) → \(item.path ?? "")\(digest)"
        case .directory: return "dir \(item.path ?? "")"
        case .symlink: return "symlink \(item.path ?? "") → \(item.target ?? "")"
        case .file: return "file \(item.path ?? "")\(digest)"
        case .packages:
            let pinned = item.pins.map { " (\($0.count) locked)" } ?? ""
            return "debian \(item.key ?? ""): \((item.packages ?? []).joined(separator: " "))\(pinned)"
        case .package: return "package \(item.name ?? "") \(item.version ?? "")\(digest)"
        }
    }
}
