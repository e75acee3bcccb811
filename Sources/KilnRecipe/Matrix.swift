import Foundation
import Yams

/// Expands a recipe with `matrix: {file: assetchains.json}` into one document per entry of that JSON array,
/// substituting `{{field}}` (or `{{field | lower}}`) in every string. A list item that is exactly `{{args}}`
/// becomes the entry's fields as flags: the derivations' leading fields first, the others in name order, and a
/// list value repeating its flag (`-addnode=a -addnode=b`). Fields an entry lacks may be computed by the
/// caller's `MatrixDerivation`s (Komodo's ports, for instance). `${NAME}` in a value is replaced from the
/// matrix's `env` (the program would get it literally: no shell runs between the image and its entrypoint).
struct Matrix {
    let file: String
    let derivations: [any MatrixDerivation]
    var diagnostics: [Diagnostic] = []
    var environment: [String: String] = [:]

    init(file: String, derivations: [any MatrixDerivation] = []) {
        self.file = file
        self.derivations = derivations
    }

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
                    hint: "one object per image, e.g. komodo's assetchains.json"))
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
            for derivation in derivations {
                do {
                    let added = try derivation.completion(
                        of: expanded.mapValues(Self.text), environment: environment)
                    for (field, value) in added where expanded[field] == nil { expanded[field] = value }
                } catch let error as MatrixDerivationError {
                    diagnostics.append(Diagnostic(location, "\(path): \(error.message)", hint: error.hint))
                    return nil
                } catch {
                    diagnostics.append(Diagnostic(location, "\(path): \(error)"))
                    return nil
                }
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
                diagnostics.append(
                    Diagnostic(
                        location,
                        "\(path): \(entryName(entry, index))'s \(field) uses ${\(name)}, which the program would get "
                            + "literally",
                        hint: "give its value under the matrix: `matrix: {file: \(path), env: {\(name): …}}`"))
                return value
            }
            text.replaceSubrange(open.lowerBound...close, with: replacement)
        }
        return text
    }

    /// How messages name an entry: its first leading field's value, else its position.
    func entryName(_ entry: Entry, _ index: Int) -> String {
        for field in derivations.flatMap(\.leadingFields) {
            if let value = entry[field] { return Self.text(value) }
        }
        return "#\(index + 1)"
    }

    /// A field the entry lacks, from the first derivation that computes it.
    private func derived(_ field: String, _ entry: Entry) throws -> String? {
        for derivation in derivations where derivation.fields.contains(field) {
            if let value = try derivation.value(
                of: field, entry: entry.mapValues(Self.text), environment: environment)
            {
                return value
            }
        }
        return nil
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
                    items += arguments(entry).map { arg in
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
                result += arguments(entry).joined(separator: " ")
                rest = rest[close.upperBound...]
                continue
            }
            let value: Any?
            do {
                value = try entry[field] ?? derived(field, entry)
            } catch {
                let hint = (error as? MatrixDerivationError)?.hint ?? "give \"\(field)\" in the matrix entry"
                problems.append(
                    Diagnostic(location, "cannot compute \(field) for \(entryName(entry, index)): \(error)", hint: hint)
                )
                rest = rest[close.upperBound...]
                continue
            }
            if let value {
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
            } else {
                problems.append(
                    Diagnostic(
                        location, "template field '\(field)' is missing from matrix entry \(entryName(entry, index))",
                        hint: "add \"\(field)\" to every entry of the matrix file, or use one of: "
                            + entry.keys.sorted().joined(separator: ", ")))
            }
            rest = rest[close.upperBound...]
        }
        return result + rest
    }

    /// The entry's fields as command-line flags (the derivations' image fields left out).
    func arguments(_ entry: Entry) -> [String] {
        let computed = Set(derivations.flatMap(\.imageFields))
        let leading = derivations.flatMap(\.leadingFields)
        let rank = { (key: String) in leading.firstIndex(of: key) ?? leading.count }
        let keys = entry.keys.filter { !computed.contains($0) }.sorted { a, b in
            rank(a) != rank(b) ? rank(a) < rank(b) : a < b
        }
        return keys.flatMap { key -> [String] in
            if let list = entry[key] as? [Any] { return list.map { "-\(key)=\(Self.text($0))" } }
            return ["-\(key)=\(Self.text(entry[key]!))"]
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
