/// A JSON value with the byte offset where it starts, so a problem in a document Kiln reads (a lock, a release
/// document, a matrix file, a stored manifest) can be named by line and column instead of "the data is not
/// valid". Foundation's decoders give neither positions for type errors nor the offset of a syntax error on
/// every platform; this small reader gives both and is only run to explain a failure or to check a matrix.
public struct JSONNode: Sendable {
    public enum Value: Sendable {
        case object([(key: String, keyOffset: Int, value: JSONNode)])
        case array([JSONNode])
        case string(String)
        /// The number as written (its text decides how a matrix renders it).
        case number(String)
        case bool(Bool)
        case null
    }

    public var value: Value
    /// Offset of the value's first byte in the document.
    public var offset: Int

    /// What a person calls this kind of value in an error message.
    public var kind: String {
        switch value {
        case .object: return "an object"
        case .array: return "a list"
        case .string: return "a string"
        case .number: return "a number"
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        }
    }
}

/// Where and why a document is not JSON.
public struct JSONSyntaxError: Error, Sendable, Equatable {
    public var offset: Int
    public var message: String

    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }
}

/// A strict RFC 8259 reader (UTF-8, no comments, no trailing commas) with a nesting limit, so a hostile
/// document fails with a position rather than exhausting the stack.
public struct JSONReader {
    public static let maxDepth = 512

    private let bytes: [UInt8]
    private var index = 0

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    public static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSONNode {
        var reader = JSONReader(bytes)
        reader.skipWhitespace()
        let root = try reader.value(depth: 0)
        reader.skipWhitespace()
        if reader.index < bytes.count { throw reader.fail("unexpected text after the document") }
        return root
    }

    /// The offset of the first byte that does not begin a well-formed UTF-8 character (no overlong forms, no
    /// surrogates), or nil. A plain loop: decoding with repair costs microseconds per bad byte.
    public static func firstInvalidUTF8(in bytes: ArraySlice<UInt8>) -> Int? {
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let lead = bytes[i]
            if lead < 0x80 {
                i += 1
                continue
            }
            let (count, smallest): (Int, UInt32)
            switch lead {
            case 0xC0...0xDF: (count, smallest) = (1, 0x80)
            case 0xE0...0xEF: (count, smallest) = (2, 0x800)
            case 0xF0...0xF7: (count, smallest) = (3, 0x10000)
            default: return i
            }
            guard i + count < bytes.endIndex else { return i }
            var value = UInt32(lead & (0x3F >> UInt8(count)))
            for k in 1...count {
                let next = bytes[i + k]
                guard next & 0xC0 == 0x80 else { return i }
                value = value << 6 | UInt32(next & 0x3F)
            }
            guard value >= smallest, value <= 0x10FFFF, !(0xD800...0xDFFF).contains(value) else { return i }
            i += count + 1
        }
        return nil
    }

    /// 1-based line and column (in characters, as editors count them) of a byte offset.
    public static func position(of offset: Int, in bytes: [UInt8]) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        for byte in bytes[..<min(max(offset, 0), bytes.count)] {
            if byte == 0x0A {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1  // continuation bytes of a UTF-8 character do not start a new column
            }
        }
        return (line, column)
    }

    // MARK: Values

    private mutating func value(depth: Int) throws(JSONSyntaxError) -> JSONNode {
        guard depth < Self.maxDepth else { throw fail("nested deeper than \(Self.maxDepth) levels") }
        guard index < bytes.count else { throw fail("the document ends where a value should be") }
        let start = index
        switch bytes[index] {
        case UInt8(ascii: "{"): return JSONNode(value: try object(depth: depth), offset: start)
        case UInt8(ascii: "["): return JSONNode(value: try array(depth: depth), offset: start)
        case UInt8(ascii: "\""): return JSONNode(value: .string(try string()), offset: start)
        case UInt8(ascii: "t"):
            try literal("true")
            return JSONNode(value: .bool(true), offset: start)
        case UInt8(ascii: "f"):
            try literal("false")
            return JSONNode(value: .bool(false), offset: start)
        case UInt8(ascii: "n"):
            try literal("null")
            return JSONNode(value: .null, offset: start)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return JSONNode(value: .number(try number()), offset: start)
        default: throw fail("unexpected \(describe(bytes[index])) where a value should be")
        }
    }

    private mutating func object(depth: Int) throws(JSONSyntaxError) -> JSONNode.Value {
        index += 1
        var members: [(key: String, keyOffset: Int, value: JSONNode)] = []
        skipWhitespace()
        if peek(UInt8(ascii: "}")) { return .object(members) }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw fail(index < bytes.count ? "expected a \"key\" in quotes" : "the document ends inside an object")
            }
            let keyOffset = index
            let key = try string()
            skipWhitespace()
            guard peek(UInt8(ascii: ":")) else { throw fail("expected ':' after the key \"\(key)\"") }
            skipWhitespace()
            members.append((key, keyOffset, try value(depth: depth + 1)))
            skipWhitespace()
            if peek(UInt8(ascii: ",")) { continue }
            if peek(UInt8(ascii: "}")) { return .object(members) }
            throw fail(index < bytes.count ? "expected ',' or '}' in an object" : "the document ends inside an object")
        }
    }

    private mutating func array(depth: Int) throws(JSONSyntaxError) -> JSONNode.Value {
        index += 1
        var items: [JSONNode] = []
        skipWhitespace()
        if peek(UInt8(ascii: "]")) { return .array(items) }
        while true {
            skipWhitespace()
            items.append(try value(depth: depth + 1))
            skipWhitespace()
            if peek(UInt8(ascii: ",")) { continue }
            if peek(UInt8(ascii: "]")) { return .array(items) }
            throw fail(index < bytes.count ? "expected ',' or ']' in a list" : "the document ends inside a list")
        }
    }

    private mutating func string() throws(JSONSyntaxError) -> String {
        index += 1
        var scalars = String.UnicodeScalarView()
        var runStart = index
        func flush(_ end: Int) throws(JSONSyntaxError) {
            let run = bytes[runStart..<end]
            if let bad = JSONReader.firstInvalidUTF8(in: run) {
                throw JSONSyntaxError(offset: bad, message: "a string is not valid UTF-8")
            }
            scalars.append(contentsOf: String(decoding: run, as: UTF8.self).unicodeScalars)
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                try flush(index)
                index += 1
                return String(scalars)
            }
            if byte < 0x20 { throw fail("a control character inside a string (escape it, e.g. \\n)") }
            if byte == UInt8(ascii: "\\") {
                try flush(index)
                scalars.append(try escape())
                runStart = index
                continue
            }
            index += 1
        }
        throw fail("the document ends inside a string")
    }

    private mutating func escape() throws(JSONSyntaxError) -> Unicode.Scalar {
        index += 1
        guard index < bytes.count else { throw fail("the document ends inside a string") }
        let byte = bytes[index]
        index += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): return Unicode.Scalar(byte)
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let high = try hex4()
            if (0xD800..<0xDC00).contains(high) {
                guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                else { throw fail("a lone UTF-16 surrogate in \\u escape") }
                index += 2
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else { throw fail("a lone UTF-16 surrogate in \\u escape") }
                return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))!
            }
            guard let scalar = Unicode.Scalar(high) else { throw fail("a lone UTF-16 surrogate in \\u escape") }
            return scalar
        default:
            index -= 1
            throw fail("unknown escape \\\(describe(byte))")
        }
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard index + 4 <= bytes.count,
            let value = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16),
            bytes[index..<index + 4].allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "-") })
        else { throw fail("\\u needs 4 hex digits") }
        index += 4
        return value
    }

    private mutating func number() throws(JSONSyntaxError) -> String {
        let start = index
        func digits() -> Int {
            let from = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - from
        }
        _ = peek(UInt8(ascii: "-"))
        if peek(UInt8(ascii: "0")) {
            if index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                throw fail("a number must not start with 0")
            }
        } else if digits() == 0 {
            throw fail("a '-' must be followed by digits")
        }
        if peek(UInt8(ascii: ".")), digits() == 0 { throw fail("a '.' in a number must be followed by digits") }
        if peek(UInt8(ascii: "e")) || peek(UInt8(ascii: "E")) {
            _ = peek(UInt8(ascii: "+")) || peek(UInt8(ascii: "-"))
            if digits() == 0 { throw fail("an exponent needs digits") }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func literal(_ word: String) throws(JSONSyntaxError) {
        let expected = Array(word.utf8)
        guard bytes.count - index >= expected.count, Array(bytes[index..<index + expected.count]) == expected else {
            throw fail("unexpected \(describe(bytes[index])) where a value should be")
        }
        index += expected.count
    }

    // MARK: Helpers

    private mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    /// Consumes `byte` if it is next.
    private mutating func peek(_ byte: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    private func fail(_ message: String) -> JSONSyntaxError { JSONSyntaxError(offset: index, message: message) }

    private func describe(_ byte: UInt8) -> String {
        (0x21..<0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }
}
