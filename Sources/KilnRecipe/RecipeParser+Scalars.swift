import Foundation
import KilnOCI
import Yams

/// The scalar readers and helpers every section of the recipe parser uses.
extension RecipeParser {
    // MARK: Scalars

    mutating func imageName(_ node: Node) -> String? {
        guard let text = string(node, "name") else { return nil }
        let component = #"^[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*$"#
        guard text.range(of: component, options: .regularExpression) != nil, text.count <= 255 else {
            report(
                node, "'\(text)' is not a valid image name",
                hint: "use lower-case letters, digits and . _ - (e.g. komodod)")
            return nil
        }
        return text
    }

    mutating func tag(_ node: Node, _ what: String, _ given: String? = nil) -> String? {
        guard let text = given ?? string(node, what) else { return nil }
        guard OCITag.isValid(text) else {
            report(
                node, "\(what) '\(text)' is not a valid OCI tag",
                hint: "use letters, digits, _ . - (max 128, not starting with . or -), e.g. 0.9.0")
            return nil
        }
        return text
    }

    mutating func id(_ node: Node, _ what: String) -> Int? {
        guard case .scalar(let scalar) = node, let value = Int(scalar.string), (0...0x7FFF_FFFF).contains(value) else {
            report(node, "\(what) must be a number from 0 to 2147483647", hint: "write e.g. \(what): 3003")
            return nil
        }
        return value
    }

    mutating func absolutePath(_ node: Node, _ what: String, _ given: String? = nil) -> String? {
        guard let text = given ?? string(node, what) else { return nil }
        guard text.hasPrefix("/") else {
            report(
                node, "\(what) '\(text)' must be an absolute path in the image",
                hint: "write it from the root: /\(text)")
            return nil
        }
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            report(
                node, "\(what) contains a control character (a line break, tab or NUL)",
                hint: "write the path on one line, without control characters")
            return nil
        }
        if text.split(separator: "/").contains("..") {
            report(node, "\(what) '\(text)' must not contain '..'", hint: "write the path without '..'")
            return nil
        }
        return text
    }

    mutating func string(_ node: Node, _ what: String) -> String? {
        guard case .scalar(let scalar) = node else {
            report(node, "\(what) must be a single value, not a \(kind(node))", hint: "write `\(what): value`")
            return nil
        }
        return scalar.string
    }

    mutating func stringList(_ node: Node, _ what: String, allowScalar: Bool = true) -> [String]? {
        switch node {
        case .scalar(let s) where allowScalar: return [s.string]
        case .sequence(let seq):
            var result: [String] = []
            for item in seq {
                guard case .scalar(let s) = item else {
                    report(item, "each item of \(what) must be a single value", hint: "write `- value` items")
                    continue
                }
                result.append(s.string)
            }
            return result
        default:
            report(node, "\(what) must be a list, not a \(kind(node))", hint: "write `\(what): [a, b]`")
            return nil
        }
    }

    mutating func stringMap(_ node: Node, _ what: String) -> [String: String]? {
        guard let fields = mapping(node, what, allowed: nil) else { return nil }
        var result: [String: String] = [:]
        for (key, _, value) in fields {
            if let v = string(value, "\(what) value") { result[key] = v }
        }
        return result
    }

    mutating func sequence(_ node: Node, _ what: String) -> [Node]? {
        guard case .sequence(let seq) = node else {
            report(
                node, "\(what) must be a list, not a \(kind(node))",
                hint: "write each item on its own line starting with `- `")
            return nil
        }
        return Array(seq)
    }

    /// A mapping's entries; reports unknown keys (with the nearest known one) and duplicates.
    mutating func mapping(_ node: Node, _ what: String, allowed: [String]?) -> [(
        key: String, keyNode: Node, value: Node
    )]? {
        guard case .mapping(let map) = node else {
            report(node, "\(what) must be a map of `key: value` lines, not a \(kind(node))")
            return nil
        }
        var result: [(key: String, keyNode: Node, value: Node)] = []
        var seen: Set<String> = []
        for (keyNode, value) in map {
            guard case .scalar(let k) = keyNode else {
                report(keyNode, "keys must be plain words")
                continue
            }
            let key = k.string
            if !seen.insert(key).inserted {
                report(keyNode, "'\(key)' is given twice", hint: "keep one")
                continue
            }
            if let allowed, !allowed.contains(key) {
                let suggestion = Self.nearest(key, in: allowed)
                report(
                    keyNode, "unknown key '\(key)' in \(what)",
                    hint: suggestion.map { "did you mean `\($0)`?" }
                        ?? "allowed here: \(allowed.joined(separator: ", "))")
                continue
            }
            result.append((key, keyNode, value))
        }
        return result
    }

    // MARK: Helpers

    func loc(_ node: Node) -> SourceLocation {
        SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    mutating func report(_ node: Node, _ message: String, hint: String? = nil) {
        diagnostics.append(Diagnostic(loc(node), message, hint: hint))
    }

    func kind(_ node: Node) -> String {
        switch node {
        case .scalar: return "single value"
        case .mapping: return "map"
        case .sequence: return "list"
        case .alias: return "alias"
        }
    }

    static func nearest(_ word: String, in candidates: [String]) -> String? {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var row = Array(0...b.count)
            for i in 1...max(a.count, 1) where !a.isEmpty {
                var previous = row[0]
                row[0] = i
                for j in stride(from: 1, through: b.count, by: 1) {
                    let current = row[j]
                    row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                    previous = current
                }
            }
            return row[b.count]
        }
        let scored = candidates.map { ($0, distance(Array(word.lowercased()), Array($0))) }.min { $0.1 < $1.1 }
        guard let (best, score) = scored, score <= max(2, word.count / 3) else { return nil }
        return best
    }
}
