import Foundation
import Yams

/// Expands a recipe with `matrix: {file: assetchains.json}` into one document per entry of that JSON array,
/// substituting `{{field}}` (or `{{field | lower}}`) in every string. A list item that is exactly `{{args}}`
/// becomes the entry's komodod arguments: `-ac_name=…` first, the other fields in name order, and a list value
/// repeating its flag (`-addnode=a -addnode=b`), as komodo's own `listassetchainparams` prints them.
struct Matrix {
    let file: String
    var diagnostics: [Diagnostic] = []

    init(file: String) { self.file = file }

    typealias Entry = [String: Any]

    /// The documents to parse, each with its entry's fields (nil entry for a recipe without a matrix).
    mutating func expand(_ root: Node) -> [(Node, [String: String]?)]? {
        guard case .mapping(let map) = root, let matrixNode = map["matrix"] else { return [(root, nil)] }
        guard let entries = load(matrixNode) else { return nil }
        if let problem = RecipeLimits.checkExpansion(root, entries: entries, file: file, at: matrixNode) {
            diagnostics.append(problem)
            return nil
        }
        var documents: [(Node, [String: String]?)] = []
        var templateProblems: Set<Diagnostic> = []
        for (index, entry) in entries.enumerated() {
            var problems: [Diagnostic] = []
            let node = substitute(root, entry: entry, index: index, problems: &problems)
            templateProblems.formUnion(problems)
            documents.append((node, entry.mapValues(Self.text)))
        }
        diagnostics += templateProblems.sorted {
            $0.location.line < $1.location.line || ($0.location.line == $1.location.line && $0.message < $1.message)
        }
        return templateProblems.isEmpty ? documents : nil
    }

    private mutating func load(_ node: Node) -> [Entry]? {
        let location = SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
        guard case .mapping(let map) = node, let pathNode = map["file"], let path = pathNode.string else {
            diagnostics.append(
                Diagnostic(location, "matrix needs a `file`", hint: "write `matrix: {file: assetchains.json}`"))
            return nil
        }
        // Like `src`: a recipe must not template a host file (its values end up in the image's config).
        if path.hasPrefix("/") || path.split(separator: "/").contains("..") {
            diagnostics.append(
                Diagnostic(
                    location, "matrix file '\(path)' must stay inside the recipe's directory",
                    hint: "put it next to the recipe and give its path relative to the recipe"))
            return nil
        }
        let directory = (file as NSString).deletingLastPathComponent
        let full = path.hasPrefix("/") ? path : directory + "/" + path
        guard let data = FileManager.default.contents(atPath: full) else {
            diagnostics.append(
                Diagnostic(
                    location, "matrix file '\(path)' not found",
                    hint: "put it next to the recipe, or give its path relative to the recipe"))
            return nil
        }
        let problems = MatrixFile.problems(data, path: full)
        guard problems.isEmpty else {
            diagnostics += problems
            return nil
        }
        guard let array = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]], !array.isEmpty else {
            diagnostics.append(
                Diagnostic(
                    location, "matrix file '\(path)' must be a non-empty JSON array of objects",
                    hint: "use komodo's assetchains.json format"))
            return nil
        }
        return array
    }

    private func substitute(_ node: Node, entry: Entry, index: Int, problems: inout [Diagnostic]) -> Node {
        switch node {
        case .scalar(var scalar):
            scalar.string = render(scalar.string, node: node, entry: entry, index: index, problems: &problems)
            return .scalar(scalar)
        case .mapping(let map):
            var pairs: [(Node, Node)] = []
            for (key, value) in map {
                if key.string == "matrix" { continue }
                pairs.append((key, substitute(value, entry: entry, index: index, problems: &problems)))
            }
            return .mapping(Node.Mapping(pairs, map.tag, map.style, map.mark))
        case .sequence(let seq):
            var items: [Node] = []
            for item in seq {
                if case .scalar(let s) = item, s.string.trimmingCharacters(in: .whitespaces) == "{{args}}" {
                    items += Self.arguments(entry).map { arg in
                        var copy = s
                        copy.string = arg
                        copy.style = .doubleQuoted
                        return .scalar(copy)
                    }
                } else {
                    items.append(substitute(item, entry: entry, index: index, problems: &problems))
                }
            }
            return .sequence(Node.Sequence(items, seq.tag, seq.style, seq.mark))
        case .alias:
            return node
        }
    }

    private func render(_ text: String, node: Node, entry: Entry, index: Int, problems: inout [Diagnostic]) -> String {
        guard text.contains("{{") else { return text }
        var result = ""
        var rest = Substring(text)
        // firstRange, not Foundation's range(of:), which copies the rest of the string on every call.
        while let open = rest.firstRange(of: "{{") {
            result += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].firstRange(of: "}}") else {
                result += rest[open.lowerBound...]
                rest = ""
                break
            }
            let expression = rest[open.upperBound..<close.lowerBound].split(separator: "|").map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            let field = expression.first ?? ""
            let location = SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
            if field == "args" {
                result += Self.arguments(entry).joined(separator: " ")
            } else if let value = entry[field] {
                var rendered = Self.text(value)
                for filter in expression.dropFirst() {
                    switch filter {
                    case "lower": rendered = rendered.lowercased()
                    case "upper": rendered = rendered.uppercased()
                    default:
                        problems.append(
                            Diagnostic(location, "unknown template filter '\(filter)'", hint: "use lower or upper"))
                    }
                }
                result += rendered
            } else if field == "p2p_port" || field == "rpc_port" {
                do {
                    let ports = try KomodoPorts.ports(entry.mapValues(Self.text))
                    result += String(field == "p2p_port" ? ports.p2p : ports.rpc)
                } catch {
                    let name = Self.text(entry["ac_name"] ?? "#\(index + 1)")
                    problems.append(
                        Diagnostic(
                            location, "cannot compute \(field) for \(name): \(error)",
                            hint:
                                "add \"p2p_port\" and \"rpc_port\" (komodod's ports for the chain) to its matrix entry")
                    )
                }
            } else {
                let name = Self.text(entry["ac_name"] ?? "#\(index + 1)")
                problems.append(
                    Diagnostic(
                        location, "template field '\(field)' is missing from matrix entry \(name)",
                        hint: "add \"\(field)\" to every entry of the matrix file, or use one of: "
                            + entry.keys.sorted().joined(separator: ", ")))
            }
            rest = rest[close.upperBound...]
        }
        return result + rest
    }

    /// Matrix fields that describe the image, not komodod flags.
    static let notArguments: Set<String> = ["p2p_port", "rpc_port"]

    /// komodod's command-line flags for a chain.
    static func arguments(_ entry: Entry) -> [String] {
        let keys = entry.keys.filter { !notArguments.contains($0) }.sorted { a, b in
            a == "ac_name" ? b != "ac_name" : (b == "ac_name" ? false : a < b)
        }
        return keys.flatMap { key -> [String] in
            if let list = entry[key] as? [Any] { return list.map { "-\(key)=\(text($0))" } }
            return ["-\(key)=\(text(entry[key]!))"]
        }
    }

    static func text(_ value: Any) -> String {
        switch value {
        case let n as NSNumber:
            if n.doubleValue == n.doubleValue.rounded() && abs(n.doubleValue) < 1e18 { return String(n.int64Value) }
            return n.stringValue
        case let s as String: return s
        case let list as [Any]: return list.map(text).joined(separator: ",")
        default: return "\(value)"
        }
    }
}
