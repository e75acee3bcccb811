import Foundation

/// What can stop a Debian package set, with what a person needs to fix it. The build glue prefixes the
/// recipe line (`file:line:col: error:`), so messages here name packages, URLs and files.
public enum DebianError: Error, CustomStringConvertible, Equatable {
    case noMirror(suite: String)
    case signature(url: String, detail: String)
    case release(url: String, detail: String)
    case index(url: String, detail: String)
    case download(url: String, detail: String)
    case missingPackage(name: String, requiredBy: String?)
    case unsatisfiable(relation: String, requiredBy: String, detail: String)
    case conflict(package: String, relation: String, with: String)
    case lockedUnavailable(name: String, version: String, mirror: String)
    case lockIncomplete(key: String, missing: [String])
    case lockStale(key: String, locked: String, requested: String)
    case badPackage(path: String, detail: String)
    case tool(command: String, detail: String)

    public var description: String {
        switch self {
        case .noMirror(let suite):
            return
                "no mirror for suite '\(suite)': add `mirror:` to the recipe, set KILN_DEBIAN_MIRROR, or configure the suite in /etc/apt/sources.list(.d)"
        case .signature(let url, let detail):
            return
                "\(url): signature check failed: \(detail). Refusing the repository: check `keyring:` (or the Signed-By of the host's apt source)"
        case .release(let url, let detail):
            return "\(url): \(detail)"
        case .index(let url, let detail):
            return "\(url): \(detail). Refusing the package index"
        case .download(let url, let detail):
            return "\(url): \(detail)"
        case .missingPackage(let name, let requiredBy):
            return requiredBy.map { "package '\(name)' (needed by \($0)) is not in the repository" }
                ?? "package '\(name)' is not in the repository: check the name, the suite and the components"
        case .unsatisfiable(let relation, let requiredBy, let detail):
            return "\(requiredBy) needs '\(relation)', which cannot be satisfied: \(detail)"
        case .conflict(let package, let relation, let with):
            return "\(package) declares '\(relation)' against \(with), and both are in the set: remove one of them"
        case .lockedUnavailable(let name, let version, let mirror):
            return
                "locked package \(name) \(version) is not served by \(mirror) (the suite moved on). Point `mirror:` or KILN_DEBIAN_MIRROR at a snapshot mirror that still serves that version, or run `kiln lock` to resolve the set again and review the lock diff"
        case .lockIncomplete(let key, let missing):
            return
                "--locked: the lock has no resolved set for \(key) covering \(missing.joined(separator: ", ")): run `kiln build` without --locked to resolve it, review and commit the lock"
        case .lockStale(let key, let locked, let requested):
            return
                "--locked: the lock's set for \(key) was resolved for '\(locked)' but the recipe asks for '\(requested)': run `kiln build` without --locked (or `kiln lock`) to resolve it, review and commit the lock"
        case .badPackage(let path, let detail):
            return "\(path): \(detail)"
        case .tool(let command, let detail):
            return "`\(command)` failed: \(detail)"
        }
    }
}
