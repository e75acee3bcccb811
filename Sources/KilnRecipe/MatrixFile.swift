import Foundation
import KilnOCI

/// Checks a matrix file (komodo's assetchains.json format) before its entries are templated: a JSON list of
/// objects whose values are strings, numbers, or lists of those. Anything else would render as something the
/// author did not write (`"ac_name": true` became the image name `1`), so it is refused at its line and
/// column in the JSON file.
enum MatrixFile {
    static func problems(_ data: Data, path: String) -> [Diagnostic] {
        func at(_ offset: Int, _ bytes: [UInt8], _ message: String, hint: String) -> Diagnostic {
            let (line, column) = JSONReader.position(of: offset, in: bytes)
            return Diagnostic(SourceLocation(file: path, line: line, column: column), message, hint: hint)
        }
        let bytes = [UInt8](data)
        if bytes.count > RecipeLimits.maxMatrixFileBytes {
            return [
                at(
                    0, bytes,
                    "the matrix file is \(bytes.count) bytes; Kiln reads up to \(RecipeLimits.maxMatrixFileBytes)",
                    hint: "split the chains over several matrix recipes")
            ]
        }
        let root: JSONNode
        do {
            root = try JSONReader.parse(bytes)
        } catch {
            return [
                at(error.offset, bytes, "the matrix file is not JSON: \(error.message)", hint: "fix the JSON syntax")
            ]
        }
        guard case .array(let entries) = root.value, !entries.isEmpty else {
            return [
                at(
                    root.offset, bytes, "a matrix file must be a non-empty list of objects, not \(root.kind)",
                    hint: "use komodo's assetchains.json format: [{\"ac_name\": \"DEX\", \"ac_supply\": \"999999\"}]")
            ]
        }
        if entries.count > RecipeLimits.maxMatrixEntries {
            return [
                at(
                    root.offset, bytes,
                    "the matrix file has \(entries.count) entries; Kiln takes up to \(RecipeLimits.maxMatrixEntries)",
                    hint: "split the chains over several matrix recipes")
            ]
        }
        var problems: [Diagnostic] = []
        for entry in entries {
            guard case .object(let fields) = entry.value else {
                problems.append(
                    at(
                        entry.offset, bytes, "a matrix entry must be an object, not \(entry.kind)",
                        hint: "write {\"ac_name\": \"DEX\", …}"))
                continue
            }
            var seen: Set<String> = []
            for field in fields {
                if !seen.insert(field.key).inserted {
                    problems.append(
                        at(field.keyOffset, bytes, "\"\(field.key)\" is given twice in this entry", hint: "keep one"))
                }
                if field.key.isEmpty
                    || !field.key.unicodeScalars.allSatisfy({
                        ($0.isASCII && (CharacterSet.alphanumerics.contains($0))) || "_-.".unicodeScalars.contains($0)
                    })
                {
                    problems.append(
                        at(
                            field.keyOffset, bytes, "\"\(field.key)\" is not a parameter name",
                            hint: "use letters, digits, _ - . as komodod's flags do, e.g. \"ac_supply\""))
                }
                let items: [JSONNode]
                if case .array(let list) = field.value.value { items = list } else { items = [field.value] }
                for item in items {
                    switch item.value {
                    case .string, .number: continue
                    default:
                        problems.append(
                            at(
                                item.offset, bytes,
                                "\"\(field.key)\" is \(item.kind); matrix values are strings, numbers or lists of them",
                                hint: "quote it if it is text, e.g. \"\(field.key)\": \"…\""))
                    }
                }
            }
        }
        return problems
    }
}
