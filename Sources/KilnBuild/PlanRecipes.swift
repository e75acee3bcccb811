import Foundation
import KilnDebian
import KilnLayer
import KilnOCI
import KilnRecipe

// What planning reads of recipes, beside Plan.swift, PlanImages.swift and LayerPlan.swift: with them, the only
// code outside KilnRecipe that reads a `Recipe`. Every later stage reads the plan.

extension RemoteInputs {
    /// Every url input in `recipes`, deduplicated by URL, with its sha256 from the recipe or the lock.
    /// Two recipes that pin one URL to different digests is an error, and so is a recipe that disagrees with
    /// the lock, unless `recipesWin` (what `kiln lock` does: the recipe's value is then recorded).
    public static func collect(_ recipes: [Recipe], lock: LockFile, recipesWin: Bool = false) throws
        -> [RemoteInput]
    {
        var byURL: [String: RemoteInput] = [:]
        var problems: [Diagnostic] = []
        for recipe in recipes {
            for layer in recipe.selectedLayers {
                for case .add(let add) in layer.items {
                    guard case .remote(let url, let sha256, _) = add.source else { continue }
                    let input = RemoteInput(
                        url: url, sha256: sha256 ?? lock.inputs[url], location: add.location,
                        pinnedInRecipe: sha256 != nil)
                    if !recipesWin, let sha256, let locked = lock.inputs[url], locked != sha256 {
                        problems.append(
                            Diagnostic(
                                add.location, "\(url) is pinned to \(sha256) here but to \(locked) in the lock",
                                hint: "fix the sha256 in the recipe, or run `kiln lock` to record the recipe's value"))
                    }
                    if let existing = byURL[url] {
                        if let a = existing.sha256, let b = input.sha256, a != b {
                            problems.append(
                                Diagnostic(
                                    add.location, "\(url) is pinned to \(b) here but to \(a) at \(existing.location)",
                                    hint: "one URL has one content: make the two sha256 values agree"))
                        }
                        if existing.sha256 == nil { byURL[url] = input }
                    } else {
                        byURL[url] = input
                    }
                }
            }
        }
        if !problems.isEmpty { throw RecipeError(problems) }
        return byURL.values.sorted { $0.url < $1.url }
    }
}

extension DebianPackages {
    /// A package set's lock key: `recipe/layer`, plus `/ARCH` when the recipe has several platforms (also in a
    /// build that `--platform` narrows to one of them).
    static func key(_ recipe: Recipe, layer: String, platform: Platform) -> String {
        let base = "\(recipe.name)/\(layer)"
        return recipe.declaredPlatforms.count > 1 ? base + "/" + architecture(platform) : base
    }

    static func request(_ spec: PackageSetSpec, recipe: Recipe, platform: Platform) -> PackageSetRequest {
        // A relative keyring is relative to the recipe file, like every path in a recipe.
        let keyring = spec.keyring.map { $0.hasPrefix("/") ? $0 : recipe.directory + "/" + $0 }
        return PackageSetRequest(
            suite: spec.suite, components: spec.components, packages: spec.packages, mirror: spec.mirror,
            keyring: keyring, architecture: architecture(platform))
    }
}

extension Recipe {
    /// Every Debian package set of the recipe with the name its lock key uses and the platforms it is
    /// resolved for: its layers' sets, and each build's environment as `build:NAME`.
    var packageSetSpecs: [(layer: String, spec: PackageSetSpec, platforms: [Platform])] {
        var sets: [(layer: String, spec: PackageSetSpec, platforms: [Platform])] = []
        for layer in layers {
            for case .packages(let spec) in layer.items {
                sets.append((layer.name, spec, platforms.filter(layer.applies(to:))))
            }
        }
        return sets + builds.map { ("build:" + $0.name, $0.environment, platforms) }
    }
}

extension Accounts {
    /// The accounts layer of `recipe`: /etc/passwd, /etc/group and home directories for its users, including
    /// those its base recipes declared (the files are written whole, so they must list them too). `chain` is
    /// the recipe and its bases, nearest first. Nil when the recipe declares no users or groups.
    static func entries(for recipe: Recipe, chain: [Recipe]) -> [LayerEntry]? {
        guard !recipe.users.isEmpty || !recipe.groups.isEmpty else { return nil }
        var users: [User] = []
        var groups: [Group] = []
        for r in chain.reversed() {
            for u in r.users {
                users.removeAll { $0.name == u.name }
                users.append(.init(name: u.name, uid: u.uid, gid: u.gid, home: u.home, shell: u.shell))
            }
            for g in r.groups {
                groups.removeAll { $0.name == g.name }
                groups.append(.init(name: g.name, gid: g.gid, members: g.members))
            }
        }
        // Every user's primary group exists, named after the user unless declared.
        for u in users where !groups.contains(where: { $0.gid == u.gid }) && u.gid != 0 && u.gid != 65534 {
            groups.append(.init(name: u.name, gid: u.gid))
        }
        var entries = [
            LayerEntry(path: "/etc/passwd", kind: .file(.bytes(Data(passwd(users).utf8))), mode: 0o644),
            LayerEntry(path: "/etc/group", kind: .file(.bytes(Data(group(groups).utf8))), mode: 0o644),
        ]
        // A home directory a `dirs:` entry of the recipe (or a base) declares is left to that entry: its mode and
        // owner win over the 0755 and user:group the accounts layer would otherwise write over them.
        let declared = Set(
            chain.flatMap { $0.layers.flatMap(\.items) }.compactMap { item -> String? in
                guard case .directory(let directory) = item else { return nil }
                return normalized(directory.path)
            })
        for u in recipe.users where !declared.contains(normalized(u.home)) {
            entries.append(LayerEntry(path: u.home, kind: .directory, mode: 0o755, uid: u.uid, gid: u.gid))
        }
        return entries
    }

    /// `/home/x/` and `/home/x` are one directory.
    static func normalized(_ path: String) -> String {
        var path = path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        return path
    }
}
