import Foundation
import Yams

/// Expands a recipe with `matrix: {file: assetchains.json}` into one document per entry of that JSON array,
/// substituting `{{field}}` (or `{{field | lower}}`) in every string. A list item that is exactly `{{args}}`
/// becomes the entry's komodod arguments: `-ac_name=…` first, the other fields in name order, and a list value
/// repeating its flag (`-addnode=a -addnode=b`), as komodo's own `listassetchainparams` prints them.
/// `{{chain}}` names the chain as dPoW does: the last component of its `datadir` when it has one (dPoW's file
/// runs GLEEC twice, the old chain in `GLEEC_OLD`), else its `ac_name`. `${NAME}` in a value is replaced from
/// the matrix's `env` (komodod would get it literally: no shell runs between the image and komodod).
struct Matrix {
    let file: String
    var diagnostics: [Diagnostic] = []
    var environment: [String: String] = [:]

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
        for (key, value) in map where key.string != "file" {
            guard key.string == "env", case .mapping(let env) = value else {
                diagnostics.append(
                    Diagnostic(
                        location, "unknown matrix key '\(key.string ?? "?")'",
                        hint: "a matrix has `file` and optionally `env: {HOME: /home/komodo}`"))
                return nil
            }
            for (name, text) in env { environment[name.string ?? ""] = text.string ?? "" }
        }
        var entries: [Entry] = []
        for (index, entry) in array.enumerated() {
            var expanded: Entry = [:]
            for (key, value) in entry {
                expanded[key] = expand(value, field: key, entry: entry, index: index, location: location, path: path)
            }
            if KomodoPorts.needsDatadir(expanded.mapValues(Self.text)), expanded["datadir"] == nil {
                // komodod refuses to start this chain without -datadir: give it dPoW's.
                guard let home = environment["HOME"] else {
                    diagnostics.append(
                        Diagnostic(
                            location, "\(path): komodod v0.9.2-2 starts the old GLEEC chain only with -datadir",
                            hint: "give the image's home under the matrix: `env: {HOME: /home/komodo}`"))
                    return nil
                }
                expanded["datadir"] = home + "/.komodo/GLEEC_OLD"
            }
            entries.append(expanded)
        }
        return diagnostics.isEmpty ? entries : nil
    }

    /// `${NAME}` replaced from `env`; a name it lacks is an error, never passed on literally.
    private mutating func expand(
        _ value: Any, field: String, entry: Entry, index: Int, location: SourceLocation, path: String
    ) -> Any {
        if let list = value as? [Any] {
            return list.map { expand($0, field: field, entry: entry, index: index, location: location, path: path) }
        }
        guard var text = value as? String, text.contains("${") else { return value }
        while let open = text.range(of: "${"), let close = text[open.upperBound...].firstIndex(of: "}") {
            let name = String(text[open.upperBound..<close])
            guard let replacement = environment[name] else {
                let chain = Self.text(entry["ac_name"] ?? "#\(index + 1)")
                diagnostics.append(
                    Diagnostic(
                        location, "\(path): \(chain)'s \(field) uses ${\(name)}, which komodod would get literally",
                        hint: "give its value under the matrix: `matrix: {file: \(path), env: {\(name): …}}`"))
                return value
            }
            text.replaceSubrange(open.lowerBound...close, with: replacement)
        }
        return text
    }

    /// `{{datadir}}`: where komodod keeps the chain, `$HOME/.komodo/SYMBOL` unless the entry says.
    private func computed(_ field: String, _ entry: Entry) -> Any? {
        guard field == "datadir", let home = environment["HOME"] else { return nil }
        return home + "/.komodo/" + Self.text(entry["ac_name"] ?? "")
    }

    /// dPoW's name for a chain: its datadir's last component when it has one, else its ac_name.
    static func chainName(_ entry: Entry) -> String {
        if let datadir = entry["datadir"] as? String,
            let last = datadir.split(separator: "/").last(where: { !$0.isEmpty })
        {
            return String(last)
        }
        return text(entry["ac_name"] ?? "")
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
            } else if let value = field == "chain" ? Self.chainName(entry) : (entry[field] ?? computed(field, entry)) {
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
