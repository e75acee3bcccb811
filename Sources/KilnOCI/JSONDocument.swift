import Foundation

/// A JSON document Kiln could not read, named the way a person fixes it: the file, the line and column, the
/// key path inside the document and what was wrong there.
public struct JSONDocumentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file (or registry reference) the document came from.
    public var path: String
    public var line: Int
    public var column: Int
    /// `images["komodod:0.9.0"]`-style path to the value, empty for the document itself.
    public var keyPath: String
    public var message: String

    public init(path: String, line: Int, column: Int, keyPath: String, message: String) {
        self.path = path
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.message = message
    }

    /// `file:line:col: message (at key)`, the format editors and CI logs link.
    public var description: String {
        "\(path):\(line):\(column): \(message)" + (keyPath.isEmpty ? "" : " (at \(keyPath))")
    }

    /// The same without the file, for messages that already name it.
    public var reason: String {
        "line \(line), column \(column)" + (keyPath.isEmpty ? "" : " (\(keyPath))") + ": \(message)"
    }
}

extension CanonicalJSON {
    /// Decodes a document read from `path`; a failure throws `JSONDocumentError` with its position instead of
    /// Foundation's `DecodingError` text. Pure: the caller reads the bytes.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, path: String) throws -> T {
        // Foundation takes seconds over a long string of invalid UTF-8; the reader names the byte at once.
        let bytes = [UInt8](data)
        if let bad = JSONReader.firstInvalidUTF8(in: bytes[...]) {
            let (line, column) = JSONReader.position(of: bad, in: bytes)
            throw JSONDocumentError(
                path: path, line: line, column: column, keyPath: "",
                message: "not JSON: byte 0x\(String(bytes[bad], radix: 16)) is not UTF-8")
        }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw JSONDocumentError.locating(error, in: data, path: path)
        } catch {
            // Errors thrown by a type's own init(from:) without a coding path: the document as a whole.
            throw JSONDocumentError(path: path, line: 1, column: 1, keyPath: "", message: "\(error)")
        }
    }
}

extension JSONDocumentError {
    /// Maps a `DecodingError` to the position of the value its coding path names (or, for a syntax error,
    /// of the first byte that is not JSON).
    public static func locating(_ error: DecodingError, in data: Data, path: String) -> JSONDocumentError {
        let bytes = [UInt8](data)
        let root = try? JSONReader.parse(bytes)
        let (codingPath, message): ([CodingKey], String)
        switch error {
        case .typeMismatch(let type, let context):
            let value = root.map { node(at: context.codingPath, in: $0).kind }
            (codingPath, message) = (context.codingPath, "expected \(describe(type)), found \(value ?? "another type")")
        case .valueNotFound(let type, let context):
            (codingPath, message) = (context.codingPath, "expected \(describe(type)), found null")
        case .keyNotFound(let key, let context):
            (codingPath, message) = (context.codingPath, "missing key \"\(key.stringValue)\"")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                return syntax(bytes, path: path, fallback: context.debugDescription)
            }
            (codingPath, message) = (context.codingPath, context.debugDescription)
        @unknown default:
            return JSONDocumentError(path: path, line: 1, column: 1, keyPath: "", message: "\(error)")
        }
        let offset = root.map { node(at: codingPath, in: $0).offset } ?? 0
        let (line, column) = JSONReader.position(of: offset, in: bytes)
        return JSONDocumentError(
            path: path, line: line, column: column, keyPath: keyPath(codingPath), message: message)
    }

    static func syntax(_ bytes: [UInt8], path: String, fallback: String) -> JSONDocumentError {
        if bytes.isEmpty {
            return JSONDocumentError(path: path, line: 1, column: 1, keyPath: "", message: "the file is empty")
        }
        let root: JSONNode
        do {
            root = try JSONReader.parse(bytes)
        } catch {
            let (line, column) = JSONReader.position(of: error.offset, in: bytes)
            return JSONDocumentError(
                path: path, line: line, column: column, keyPath: "", message: "not JSON: \(error.message)")
        }
        // Valid JSON that Foundation still refuses: a number no Swift number type holds.
        if let number = unrepresentable(root) {
            let (line, column) = JSONReader.position(of: number.offset, in: bytes)
            return JSONDocumentError(
                path: path, line: line, column: column, keyPath: "", message: "a number too large to read")
        }
        return JSONDocumentError(path: path, line: 1, column: 1, keyPath: "", message: "not JSON: \(fallback)")
    }

    static func unrepresentable(_ node: JSONNode) -> JSONNode? {
        switch node.value {
        case .number(let text): return (Double(text)?.isFinite ?? false) ? nil : node
        case .array(let items): return items.lazy.compactMap(unrepresentable).first
        case .object(let members): return members.lazy.compactMap { unrepresentable($0.value) }.first
        default: return nil
        }
    }

    /// The value at `codingPath`, or the deepest part of that path the document has.
    static func node(at codingPath: [CodingKey], in root: JSONNode) -> JSONNode {
        var node = root
        for key in codingPath {
            switch node.value {
            case .object(let members):
                guard let member = members.last(where: { $0.key == key.stringValue }) else { return node }
                node = member.value
            case .array(let items):
                guard let i = key.intValue, items.indices.contains(i) else { return node }
                node = items[i]
            default:
                return node
            }
        }
        return node
    }

    static func keyPath(_ codingPath: [CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if let i = key.intValue, key.stringValue == "Index \(i)" || key.stringValue == "\(i)" {
                text += "[\(i)]"
            } else if key.stringValue.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
                text += (text.isEmpty ? "" : ".") + key.stringValue
            } else {
                text += "[\"\(key.stringValue)\"]"
            }
        }
        return text
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Int.Type, is Int64.Type, is UInt64.Type, is UInt32.Type, is Int32.Type: return "a whole number"
        case is Double.Type, is Float.Type: return "a number"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array<") || name.hasPrefix("[") { return "a list" }
            if name.hasPrefix("Dictionary<") { return "an object" }
            return "an object"
        }
    }
}
