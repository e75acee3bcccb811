import Foundation
import KilnOCI
import Yams

/// All the recipes of a build, matrices expanded, bases resolved, ordered so every base precedes the
/// images built on it.
public struct RecipeSet: Sendable {
    public private(set) var recipes: [Recipe]

    public func recipe(named name: String) -> Recipe? { recipes.first { $0.name == name } }

    /// Loads recipe files and directories (every `*.yaml`/`*.yml` in a directory, not recursing, hidden files
    /// skipped). Throws one `RecipeError` with every problem found. `derivations` are the product rules a
    /// matrix may use (Kiln's CLI passes Komodo's).
    public static func load(paths: [String], derivations: [any MatrixDerivation] = []) throws -> RecipeSet {
        var files: [String] = []
        var diagnostics: [Diagnostic] = []
        for path in paths {
            let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory) else {
                diagnostics.append(
                    Diagnostic(
                        SourceLocation(file: path, line: 1, column: 1), "no such recipe file or directory",
                        hint: "pass a recipe .yaml file or a directory of them (default: recipes/)"))
                continue
            }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: absolute)) ?? []
                files += names.filter { !$0.hasPrefix(".") && ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) }.sorted()
                    .map { absolute + "/" + $0 }
            } else {
                files.append(absolute)
            }
        }
        var recipes: [Recipe] = []
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                diagnostics.append(
                    Diagnostic(
                        SourceLocation(file: file, line: 1, column: 1), "cannot read the recipe",
                        hint: "check that the file is readable"))
                continue
            }
            switch RecipeLimits.text(data, file: file) {
            case .success(let text):
                let (parsed, problems) = parse(text, file: file, derivations: derivations)
                recipes += parsed
                diagnostics += problems
            case .failure(let problem): diagnostics.append(problem)
            }
        }
        let (ordered, graphProblems) = order(recipes)
        diagnostics += graphProblems
        if !diagnostics.isEmpty { throw RecipeError(diagnostics) }
        return RecipeSet(recipes: ordered)
    }

    /// Parses one recipe file's text (a matrix recipe gives several recipes).
    public static func parse(_ text: String, file: String, derivations: [any MatrixDerivation] = []) -> (
        [Recipe], [Diagnostic]
    ) {
        if let problem = RecipeLimits.checkText(text, file: file) { return ([], [problem]) }
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                return (
                    [],
                    [
                        Diagnostic(
                            SourceLocation(file: file, line: 1, column: 1), "the recipe is empty",
                            hint: "see README: Recipes")
                    ]
                )
            }
            root = node
        } catch let error as YamlError {
            return ([], [yamlDiagnostic(error, file: file, text: text)])
        } catch {
            return ([], [Diagnostic(SourceLocation(file: file, line: 1, column: 1), "\(error)")])
        }
        if let problem = RecipeLimits.check(root, file: file) { return ([], [problem]) }
        var matrix = Matrix(file: file, derivations: derivations)
        guard let documents = matrix.expand(root) else { return ([], matrix.diagnostics) }
        var recipes: [Recipe] = []
        var diagnostics = matrix.diagnostics
        for (node, entry) in documents {
            var parser = RecipeParser(file: file)
            if var recipe = parser.parse(node) {
                recipe.matrixEntry = entry
                if parser.diagnostics.isEmpty { recipes.append(recipe) }
            }
            // A matrix repeats the same mistake per entry: report each location once.
            for d in parser.diagnostics where !diagnostics.contains(d) { diagnostics.append(d) }
        }
        return (recipes, diagnostics)
    }

    /// Orders recipes so bases come first; reports unknown bases, duplicate names and cycles.
    static func order(_ recipes: [Recipe]) -> ([Recipe], [Diagnostic]) {
        var diagnostics: [Diagnostic] = []
        var byName: [String: Recipe] = [:]
        for recipe in recipes {
            if let first = byName[recipe.name] {
                diagnostics.append(
                    Diagnostic(
                        recipe.location, "image name '\(recipe.name)' is already used by \(first.location)",
                        hint: "give each recipe (or matrix entry) its own name"))
                continue
            }
            byName[recipe.name] = recipe
        }
        for recipe in recipes {
            if case .recipe(let base) = recipe.base, byName[base] == nil {
                let near = RecipeParser.nearest(base, in: Array(byName.keys).sorted())
                diagnostics.append(
                    Diagnostic(
                        recipe.baseLocation ?? recipe.location, "base '\(base)' is not a recipe in this build",
                        hint: near.map { "did you mean `\($0)`?" }
                            ?? "name a recipe of this build, `scratch`, or a registry image pinned by digest"))
            }
        }
        var ordered: [Recipe] = []
        var state: [String: Int] = [:]  // 1 visiting, 2 done
        func visit(_ recipe: Recipe, _ path: [Recipe]) {
            if state[recipe.name] == 2 { return }
            if state[recipe.name] == 1 {
                let cycle = path.drop { $0.name != recipe.name }
                let names = (cycle.map(\.name) + [recipe.name]).joined(separator: " → ")
                for member in cycle {
                    diagnostics.append(
                        Diagnostic(
                            member.baseLocation ?? member.location, "recipes form a cycle: \(names)",
                            hint: "one of them must build on `scratch` or another base"))
                }
                return
            }
            state[recipe.name] = 1
            if case .recipe(let base) = recipe.base, let b = byName[base] { visit(b, path + [recipe]) }
            state[recipe.name] = 2
            ordered.append(recipe)
        }
        for recipe in recipes where byName[recipe.name]?.location == recipe.location { visit(recipe, []) }
        return (ordered, diagnostics)
    }

    /// The named recipes and every recipe they build on, in build order.
    public func closure(of names: [String]) -> [Recipe] {
        var wanted = Set<String>()
        func add(_ name: String) {
            guard wanted.insert(name).inserted, let r = recipe(named: name) else { return }
            if case .recipe(let base) = r.base { add(base) }
        }
        names.forEach(add)
        return recipes.filter { wanted.contains($0.name) }
    }

    static func yamlDiagnostic(_ error: YamlError, file: String, text: String) -> Diagnostic {
        switch error {
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Yams names the map; point at the key's second occurrence at the map's indentation.
            let key = duplicates.first ?? "?"
            let indent = String(repeating: " ", count: max(context.mark.column - 1, 0))
            let lines = text.components(separatedBy: "\n")
            let hits = lines.indices.filter { i in
                lines[i].hasPrefix(indent + key)
                    && lines[i].dropFirst(indent.count + key.count).trimmingCharacters(in: .whitespaces).hasPrefix(":")
            }
            let line = hits.count > 1 ? hits[1] + 1 : context.mark.line
            return Diagnostic(
                SourceLocation(file: file, line: line, column: indent.count + 1), "'\(key)' is given twice",
                hint: "keep one")
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            // libyaml puts an error at the end of a file without a final line break on the line after it, and
            // counts U+2028 and lone CRs as line breaks where editors do not: keep the location inside the file.
            let lines = text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false)
            let (line, column) =
                mark.line > lines.count
                ? (lines.count, (lines.last.map { String(Substring($0)).unicodeScalars.count } ?? 0) + 1)
                : (mark.line, mark.column)
            return Diagnostic(
                SourceLocation(file: file, line: line, column: column), "YAML syntax: \(problem)",
                hint: "check indentation and quoting on this line")
        case .reader(let problem, let offset, _, _):
            let (line, column) = JSONReader.position(of: offset ?? 0, in: Array(text.utf8))
            return Diagnostic(
                SourceLocation(file: file, line: line, column: column), "YAML: \(problem)",
                hint: "remove the character, or write it as an escape in a double-quoted string (\"\\t\")")
        default:
            return Diagnostic(SourceLocation(file: file, line: 1, column: 1), "YAML: \(error)")
        }
    }
}
