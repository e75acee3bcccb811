import Foundation
import KilnOCI
import Yams

/// How big a recipe may get, checked before anything walks or templates it. YAML aliases share one node
/// many times (nine aliases of nine aliases is 9^n values from a few hundred bytes) and a matrix multiplies
/// every string by its entries, so both are measured as they would expand and refused past a cap, in time
/// proportional to the cap, not to the expansion. Real recipes are far below every limit (komodod's has
/// ~150 values); raise one here if a legitimate recipe ever needs it.
public enum RecipeLimits {
    /// A recipe file's size (Yams builds a few hundred bytes of nodes per value, so this also bounds the
    /// memory composing it takes; large content belongs in files added with `src:`).
    public static let maxFileBytes = 256 << 10
    /// Values (keys, scalars, lists, maps) in one recipe, with aliases expanded.
    public static let maxNodes = 20_000
    /// Text in one recipe, with aliases expanded.
    public static let maxTextBytes = 4 << 20
    /// Nesting of lists and maps (libyaml stops at 1,000; Kiln's deepest key is 5 levels down).
    public static let maxDepth = 64
    /// A matrix file's size and entries.
    public static let maxMatrixFileBytes = 4 << 20
    public static let maxMatrixEntries = 4_096
    /// Every matrix image together: values, and text once each entry's fields are substituted (each value is
    /// copied per entry, ~1 KB and ~10 µs apiece: 100,000 is about a second and 100 MB; the assetchain
    /// recipe of 46 chains makes ~1,200).
    public static let maxMatrixNodes = 100_000
    public static let maxMatrixTextBytes = 16 << 20

    /// What a node expands to; stops counting once a limit is passed.
    struct Size {
        var nodes = 0
        var textBytes = 0
        /// `{{…}}` occurrences (each can grow into a matrix entry's fields).
        var templates = 0
        var tooDeep = false

        var withinLimits: Bool { nodes <= maxNodes && textBytes <= maxTextBytes && !tooDeep }
    }

    /// The recipe text from a file's bytes: refuses a file over the size limit and names the line and column
    /// of the first byte that is not UTF-8.
    static func text(_ data: Data, file: String) -> Result<String, Diagnostic> {
        if data.count > maxFileBytes {
            return .failure(
                Diagnostic(
                    SourceLocation(file: file, line: 1, column: 1),
                    "the recipe is \(data.count) bytes; Kiln reads recipes up to \(maxFileBytes) bytes",
                    hint: "split it into several recipes, or keep large content in files added with `src:`"))
        }
        let bytes = [UInt8](data)
        guard let offset = JSONReader.firstInvalidUTF8(in: bytes[...]) else {
            return .success(String(decoding: bytes, as: UTF8.self))
        }
        let (line, column) = JSONReader.position(of: offset, in: bytes)
        let byte = offset < bytes.count ? String(format: "0x%02x", bytes[offset]) : "the end"
        let utf16 = bytes.starts(with: [0xFF, 0xFE]) || bytes.starts(with: [0xFE, 0xFF])
        return .failure(
            Diagnostic(
                SourceLocation(file: file, line: line, column: column),
                "byte \(byte) is not UTF-8" + (utf16 ? " (the file is UTF-16)" : ""),
                hint: "save the recipe as UTF-8; write other characters as \"\\u00e9\" in a double-quoted string"))
    }

    /// A diagnostic if the text is over the size limit (for text handed to `RecipeSet.parse` directly), or
    /// holds a line break only some tools count (YAML ends lines at U+2028, U+2029, U+0085 and a lone CR,
    /// most editors do not, so every later line and column would be wrong); CRLF is fine.
    static func checkText(_ text: String, file: String) -> Diagnostic? {
        if text.utf8.count > maxFileBytes {
            if case .failure(let problem) = self.text(Data(text.utf8), file: file) { return problem }
        }
        var (line, column) = (1, 1)
        var previous: Unicode.Scalar = " "
        for scalar in text.unicodeScalars {
            let loneCR = previous == "\r" && scalar != "\n"
            if loneCR || ["\u{2028}", "\u{2029}", "\u{85}"].contains(scalar) {
                let name =
                    loneCR
                    ? "a carriage return without a line feed" : "U+\(String(scalar.value, radix: 16, uppercase: true))"
                return Diagnostic(
                    SourceLocation(file: file, line: line, column: loneCR ? column - 1 : column),
                    "\(name) is a line break to YAML but not to most editors",
                    hint: "remove it, or end lines with \\n (or \\r\\n)")
            }
            if scalar == "\n" {
                (line, column) = (line + 1, 1)
            } else {
                column += 1
            }
            previous = scalar
        }
        if previous == "\r" {
            return Diagnostic(
                SourceLocation(file: file, line: line, column: column - 1),
                "a carriage return without a line feed is a line break to YAML but not to most editors",
                hint: "remove it, or end lines with \\n (or \\r\\n)")
        }
        return nil
    }

    /// A diagnostic at the top-level key whose value expands past a limit (or at the document).
    static func check(_ root: Node, file: String) -> Diagnostic? {
        var size = Size()
        let entries: [(Node, Node)]
        if case .mapping(let map) = root { entries = Array(map) } else { entries = [(root, root)] }
        for (key, value) in entries {
            measure(value, depth: 1, into: &size)
            guard size.withinLimits else {
                let name = key.string.map { "'\($0)'" } ?? "the recipe"
                let location = SourceLocation(file: file, line: key.mark?.line ?? 1, column: key.mark?.column ?? 1)
                if size.tooDeep {
                    return Diagnostic(
                        location, "\(name) nests lists and maps more than \(maxDepth) levels deep",
                        hint: "recipes need at most a few levels; check the indentation")
                }
                return Diagnostic(
                    location,
                    "\(name) expands to more than \(maxNodes) values or \(maxTextBytes) bytes of text "
                        + "(YAML aliases `*name` repeat what they point to)",
                    hint: "write the values out without nested aliases, or split the recipe")
            }
        }
        return nil
    }

    /// Counts `node` as fully expanded, returning early once over a limit.
    static func measure(_ node: Node, depth: Int, into size: inout Size) {
        guard size.withinLimits else { return }
        size.nodes += 1
        if depth > maxDepth {
            size.tooDeep = true
            return
        }
        switch node {
        case .scalar(let scalar):
            size.textBytes += scalar.string.utf8.count
            size.templates += templateCount(scalar.string)
        case .mapping(let map):
            for (key, value) in map {
                measure(key, depth: depth + 1, into: &size)
                measure(value, depth: depth + 1, into: &size)
                if !size.withinLimits { return }
            }
        case .sequence(let seq):
            for item in seq {
                measure(item, depth: depth + 1, into: &size)
                if !size.withinLimits { return }
            }
        case .alias: break
        }
    }

    static func templateCount(_ text: String) -> Int {
        var count = 0
        var previous: UInt8 = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: "{") && previous == byte {
                count += 1
                previous = 0
            } else {
                previous = byte
            }
        }
        return count
    }

    /// A diagnostic at `matrix:` if the images a matrix makes would together pass the limits: each entry
    /// copies the recipe, and each `{{…}}` can grow by at most all of the entry's fields.
    static func checkExpansion(_ root: Node, entries: [[String: Any]], file: String, at matrix: Node) -> Diagnostic? {
        var size = Size()
        measure(root, depth: 0, into: &size)
        var nodes = 0
        var bytes = 0
        for entry in entries {
            let entryBytes = entry.reduce(0) { total, field in
                let values = (field.value as? [Any])?.count ?? 1
                return total + (field.key.utf8.count + 3) * max(values, 1) + Matrix.text(field.value).utf8.count
            }
            nodes += size.nodes
            bytes += size.textBytes + size.templates * entryBytes
            if nodes > maxMatrixNodes || bytes > maxMatrixTextBytes { break }
        }
        guard nodes > maxMatrixNodes || bytes > maxMatrixTextBytes else { return nil }
        return Diagnostic(
            SourceLocation(file: file, line: matrix.mark?.line ?? 1, column: matrix.mark?.column ?? 1),
            "the matrix would expand to more than \(maxMatrixNodes) values or \(maxMatrixTextBytes) bytes of recipe "
                + "text (\(entries.count) entries × the recipe)",
            hint: "use fewer or smaller `{{…}}` templates or matrix entries, or split the matrix file")
    }
}
