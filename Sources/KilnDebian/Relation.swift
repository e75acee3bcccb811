import Foundation

/// A version constraint in a relationship field: `(>= 2.36)`.
public struct VersionConstraint: Sendable, Hashable, CustomStringConvertible {
    public enum Operator: String, Sendable, Hashable {
        case earlier = "<<", earlierOrEqual = "<=", equal = "=", laterOrEqual = ">=", later = ">>"
    }

    public var op: Operator
    public var version: DebianVersion

    public func admits(_ candidate: DebianVersion) -> Bool {
        let order = DebianVersion.compare(candidate, version)
        switch op {
        case .earlier: return order < 0
        case .earlierOrEqual: return order <= 0
        case .equal: return order == 0
        case .laterOrEqual: return order >= 0
        case .later: return order > 0
        }
    }

    public var description: String { "\(op.rawValue) \(version)" }
}

/// One alternative of a relationship: `libc6 (>= 2.36)`, `awk:any`, `foo:amd64`.
public struct Relation: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    /// `any`, `native` or an architecture; nil when unqualified.
    public var architecture: String?
    public var constraint: VersionConstraint?

    public var description: String {
        name + (architecture.map { ":" + $0 } ?? "") + (constraint.map { " (\($0))" } ?? "")
    }

    /// Parses a relationship field (`Depends`, `Provides`, …): comma-separated groups of `|` alternatives.
    /// Architecture restrictions (`[amd64]`) and build profiles (`<!nocheck>`) only occur in source
    /// packages' build relations, never in binary Packages stanzas, so they are dropped if present.
    public static func parseField(_ text: String?) -> [[Relation]] {
        guard let text else { return [] }
        return text.split(separator: ",").compactMap { group in
            let alternatives = group.split(separator: "|").compactMap { parse(String($0)) }
            return alternatives.isEmpty ? nil : alternatives
        }
    }

    static func parse(_ raw: String) -> Relation? {
        let text = Substring(raw)
        var constraint: VersionConstraint?
        if let paren = text.firstIndex(of: "(") {
            let inside = text[text.index(after: paren)...].prefix { $0 != ")" }
            let trimmed = inside.trimmingCharacters(in: .whitespacesAndNewlines)
            let opText = trimmed.prefix { "<>=".contains($0) }
            let versionText = trimmed.dropFirst(opText.count).trimmingCharacters(in: .whitespacesAndNewlines)
            let op: VersionConstraint.Operator?
            switch opText {
            case "<<": op = .earlier
            // `<` and `>` are obsolete spellings of `<=` and `>=` (deb-control(5)).
            case "<=", "<": op = .earlierOrEqual
            case "=": op = .equal
            case ">=", ">": op = .laterOrEqual
            case ">>": op = .later
            default: op = nil
            }
            if let op, !versionText.isEmpty {
                constraint = VersionConstraint(op: op, version: DebianVersion(versionText))
            }
        }
        // The name ends where a constraint, an architecture list or a build profile starts.
        let namePart = text.prefix { !"([<".contains($0) }
        let nameText = namePart.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !nameText.isEmpty else { return nil }
        let parts = nameText.split(separator: ":", maxSplits: 1)
        return Relation(
            name: String(parts[0]), architecture: parts.count > 1 ? String(parts[1]) : nil, constraint: constraint)
    }
}
