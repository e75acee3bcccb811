import Foundation

/// A binary package as a repository's Packages index describes it: what the resolver and the download need.
public struct BinaryPackage: Sendable, Hashable {
    public var name: String
    public var version: DebianVersion
    public var architecture: String
    /// Path of the .deb relative to the mirror root.
    public var filename: String
    public var size: Int64
    public var sha256: String
    /// The source package (`Source:` without its version), else the binary's own name.
    public var source: String
    public var multiArch: String?
    public var provides: [Relation]
    /// Relationship fields as written: parsed only for the few packages the resolver looks at (an index has
    /// tens of thousands), see `depends` and friends.
    var relationText: [String?]

    public var preDepends: [[Relation]] { Relation.parseField(relationText[0]) }
    public var depends: [[Relation]] { Relation.parseField(relationText[1]) }
    public var conflicts: [[Relation]] { Relation.parseField(relationText[2]) }
    public var breaks: [[Relation]] { Relation.parseField(relationText[3]) }

    /// The Packages fields this reads (lower case), so the index parser keeps nothing else.
    public static let fields: Set<String> = [
        "package", "version", "architecture", "filename", "size", "sha256", "source", "multi-arch", "depends",
        "pre-depends", "provides", "conflicts", "breaks",
    ]

    public init?(_ stanza: Stanza) {
        guard let name = stanza["Package"], let version = stanza["Version"], let architecture = stanza["Architecture"],
            let filename = stanza["Filename"], let size = stanza["Size"].flatMap({ Int64($0) }),
            let sha256 = stanza["SHA256"]
        else { return nil }
        self.init(
            name: name, version: version, architecture: architecture, filename: filename, size: size,
            sha256: sha256.lowercased(), source: stanza.sourcePackage,
            depends: stanza["Depends"], preDepends: stanza["Pre-Depends"], provides: stanza["Provides"],
            conflicts: stanza["Conflicts"], breaks: stanza["Breaks"], multiArch: stanza["Multi-Arch"])
    }

    public init(
        name: String, version: String, architecture: String, filename: String, size: Int64, sha256: String,
        source: String? = nil, depends: String? = nil, preDepends: String? = nil, provides: String? = nil,
        conflicts: String? = nil, breaks: String? = nil, multiArch: String? = nil
    ) {
        self.name = name
        self.version = DebianVersion(version)
        self.architecture = architecture
        self.filename = filename
        self.size = size
        self.sha256 = sha256
        self.source = source ?? name
        self.multiArch = multiArch
        self.provides = Relation.parseField(provides).flatMap { $0 }
        relationText = [preDepends, depends, conflicts, breaks]
    }

    public var label: String { "\(name) \(version)" }
}

/// Computes the set of packages to install: the packages listed, plus the closure of their `Depends` and
/// `Pre-Depends`. Nothing else: `Essential: yes` and `Priority: required` packages are NOT added implicitly
/// (a runtime base wants the least software; list them if the image needs them), and Recommends/Suggests
/// are ignored. Greedy and deterministic: requests in sorted order, dependencies breadth first, and for
/// each `a | b` group an already-chosen alternative wins, else the first satisfiable one.
public struct Resolver: Sendable {
    /// Packages by name, highest version first.
    let packages: [String: [BinaryPackage]]
    /// Virtual name → the packages providing it, with the provided version if any.
    let providers: [String: [(package: BinaryPackage, version: DebianVersion?)]]
    public let architecture: String

    public init(packages: [BinaryPackage], architecture: String) {
        self.architecture = architecture
        var byName: [String: [BinaryPackage]] = [:]
        var providers: [String: [(package: BinaryPackage, version: DebianVersion?)]] = [:]
        for package in packages where package.architecture == architecture || package.architecture == "all" {
            byName[package.name, default: []].append(package)
            for provided in package.provides {
                providers[provided.name, default: []].append((package, provided.constraint?.version))
            }
        }
        self.packages = byName.mapValues { list in
            list.sorted { a, b in a.version != b.version ? a.version > b.version : a.filename < b.filename }
        }
        self.providers = providers.mapValues { list in
            list.sorted { a, b in
                a.package.name != b.package.name
                    ? a.package.name < b.package.name : a.package.version > b.package.version
            }
        }
    }

    /// The package named `name`, at `version` when given (the lock's pin).
    public func package(named name: String, version: String? = nil) -> BinaryPackage? {
        guard let list = packages[name] else { return nil }
        guard let version else { return list.first }
        return list.first { $0.version.description == version }
    }

    /// The closure of `requested`, sorted by name. Throws naming the package that cannot be satisfied.
    public func resolve(_ requested: [String]) throws -> [BinaryPackage] {
        var chosen: [String: BinaryPackage] = [:]
        var queue: [(groups: [[Relation]], by: String)] = []
        var head = 0
        func choose(_ package: BinaryPackage) {
            chosen[package.name] = package
            queue.append((package.preDepends + package.depends, package.label))
        }
        for name in Set(requested).sorted() {
            let relation = Relation.parseField(name).first?.first ?? Relation(name: name)
            if let existing = chosen[relation.name] {
                guard satisfies(existing, relation) else {
                    throw DebianError.unsatisfiable(
                        relation: relation.description, requiredBy: "the recipe", detail: "\(existing.label) is chosen")
                }
                continue
            }
            if architectureAllowed(relation),
                let real = packages[relation.name]?.first(where: { satisfies($0, relation) })
            {
                choose(real)
            } else if packages[relation.name] == nil,
                let only = providers[relation.name].map({ Set($0.map(\.package.name)) }),
                only.count == 1, let provider = providers[relation.name]?.first?.package
            {
                // A virtual name with exactly one provider is unambiguous (as apt treats it).
                choose(provider)
            } else if let list = providers[relation.name], packages[relation.name] == nil {
                throw DebianError.unsatisfiable(
                    relation: relation.name, requiredBy: "the recipe",
                    detail:
                        "it is a virtual package provided by \(Set(list.map(\.package.name)).sorted().joined(separator: ", ")): list one of them"
                )
            } else if packages[relation.name] != nil {
                throw DebianError.unsatisfiable(
                    relation: relation.description, requiredBy: "the recipe", detail: "no version matches")
            } else {
                throw DebianError.missingPackage(name: relation.name, requiredBy: nil)
            }
        }
        while head < queue.count {
            let (groups, by) = queue[head]
            head += 1
            for group in groups {
                if group.contains(where: { alternative in chosenSatisfying(alternative, chosen) != nil }) { continue }
                var picked: BinaryPackage?
                for alternative in group {
                    // A real package of that name already chosen at another version cannot be swapped.
                    if chosen[alternative.name] != nil { continue }
                    if let candidate = candidates(alternative).first {
                        picked = candidate
                        break
                    }
                }
                guard let picked else {
                    let text = group.map(\.description).joined(separator: " | ")
                    let known = group.map { alternative -> String in
                        if let existing = chosen[alternative.name] { return "\(existing.label) is already chosen" }
                        if let list = packages[alternative.name] {
                            return
                                "\(alternative.name) has only \(list.map(\.version.description).joined(separator: ", "))"
                        }
                        return providers[alternative.name] == nil
                            ? "\(alternative.name) is not in the repository"
                            : "no provider of \(alternative.name) matches"
                    }
                    if group.count == 1, packages[group[0].name] == nil, providers[group[0].name] == nil {
                        throw DebianError.missingPackage(name: group[0].name, requiredBy: by)
                    }
                    throw DebianError.unsatisfiable(
                        relation: text, requiredBy: by, detail: known.joined(separator: "; "))
                }
                choose(picked)
            }
        }
        let result = chosen.values.sorted { $0.name < $1.name }
        try checkConflicts(result)
        return result
    }

    /// Conflicts and Breaks among the chosen packages (a package never conflicts with itself, which
    /// covers the common `Provides: x` + `Conflicts: x` pattern).
    func checkConflicts(_ chosen: [BinaryPackage]) throws {
        let byName = Dictionary(uniqueKeysWithValues: chosen.map { ($0.name, $0) })
        for package in chosen {
            for relation in (package.conflicts + package.breaks).flatMap({ $0 }) {
                if let other = byName[relation.name], other.name != package.name, satisfies(other, relation) {
                    throw DebianError.conflict(
                        package: package.label, relation: relation.description, with: other.label)
                }
                for other in chosen where other.name != package.name && other.name != relation.name {
                    for provided in other.provides where provided.name == relation.name {
                        if providedSatisfies(provided.constraint?.version, relation) {
                            throw DebianError.conflict(
                                package: package.label, relation: relation.description,
                                with: "\(other.label) (provides \(provided.name))")
                        }
                    }
                }
            }
        }
    }

    /// Candidates for one alternative, best first: the real package's versions, then providers.
    func candidates(_ relation: Relation) -> [BinaryPackage] {
        guard architectureAllowed(relation) else { return [] }
        var result = (packages[relation.name] ?? []).filter { satisfies($0, relation) }
        for provider in providers[relation.name] ?? [] where providedSatisfies(provider.version, relation) {
            result.append(provider.package)
        }
        return result
    }

    func chosenSatisfying(_ relation: Relation, _ chosen: [String: BinaryPackage]) -> BinaryPackage? {
        guard architectureAllowed(relation) else { return nil }
        if let real = chosen[relation.name], satisfies(real, relation) { return real }
        for provider in providers[relation.name] ?? [] {
            if let picked = chosen[provider.package.name], picked == provider.package,
                providedSatisfies(provider.version, relation)
            {
                return picked
            }
        }
        return nil
    }

    func satisfies(_ package: BinaryPackage, _ relation: Relation) -> Bool {
        guard package.name == relation.name else { return false }
        return relation.constraint?.admits(package.version) ?? true
    }

    /// An unversioned Provides satisfies only unversioned relations (Debian policy 7.5).
    func providedSatisfies(_ provided: DebianVersion?, _ relation: Relation) -> Bool {
        guard let constraint = relation.constraint else { return true }
        guard let provided else { return false }
        return constraint.admits(provided)
    }

    /// `:any` and `:native` (and our own architecture) are satisfiable in a single-architecture set;
    /// a foreign architecture qualifier is not.
    func architectureAllowed(_ relation: Relation) -> Bool {
        guard let qualifier = relation.architecture else { return true }
        return qualifier == "any" || qualifier == "native" || qualifier == architecture
    }
}

extension Relation {
    public init(name: String) { self.init(name: name, architecture: nil, constraint: nil) }
}
