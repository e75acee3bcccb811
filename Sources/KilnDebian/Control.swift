import Foundation

/// One deb822 paragraph (a `Packages` stanza, a Release file, a `.sources` entry, a control file): fields in
/// their original order, names compared case-insensitively as deb822 requires.
public struct Stanza: Sendable, Hashable {
    public var fields: [(name: String, value: String)]

    public init(fields: [(name: String, value: String)] = []) { self.fields = fields }

    public subscript(_ name: String) -> String? {
        fields.first { Self.sameName($0.name, name) }?.value
    }

    /// ASCII case-insensitive, without allocating (looked up millions of times over a Packages file).
    static func sameName(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        for (x, y) in zip(a.utf8, b.utf8) where x != y {
            let lx = x >= 65 && x <= 90 ? x | 0x20 : x
            let ly = y >= 65 && y <= 90 ? y | 0x20 : y
            if lx != ly { return false }
        }
        return true
    }

    /// The source package a binary stanza names: `Source: NAME (VERSION)` gives NAME (the version is there only
    /// when it differs from the binary's); nil without the field, when the source is the binary's own name.
    public var sourcePackage: String? {
        self["Source"].map { String($0.prefix { $0 != " " }) }
    }

    /// The paragraph as deb822 text (continuation lines keep their leading space), ending with a newline.
    public var text: String {
        fields.map { "\($0.name): \($0.value)\n" }.joined()
    }

    public static func == (a: Stanza, b: Stanza) -> Bool { a.text == b.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }
}

/// deb822 parsing over bytes: Packages files are tens of megabytes, so this avoids per-character Strings.
public enum Control {
    /// Every paragraph of `data`. `keep`, when given, limits the fields kept (lower case names): a Packages
    /// file's descriptions are most of its bytes and the resolver needs none of them.
    public static func parse(_ data: Data, keep: Set<String>? = nil) -> [Stanza] {
        var stanzas: [Stanza] = []
        // Field names to keep, lower-cased bytes: compared in place, so skipped lines allocate nothing.
        let wanted = keep.map { $0.map { Array($0.lowercased().utf8) } }
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            var current: [(name: String, value: String)] = []
            var keepingLast = false
            var position = 0
            let end = bytes.count
            while position < end {
                var lineEnd = position
                if let base = bytes.baseAddress,
                    let hit = memchr(base + position, 0x0A, end - position)
                {
                    lineEnd = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(hit))
                } else {
                    lineEnd = end
                }
                var stop = lineEnd
                if stop > position && bytes[stop - 1] == 0x0D { stop -= 1 }
                defer { position = lineEnd + 1 }
                if stop == position || isBlank(bytes, position, stop) {
                    if !current.isEmpty { stanzas.append(Stanza(fields: current)) }
                    current = []
                    keepingLast = false
                    continue
                }
                let first = bytes[position]
                if first == UInt8(ascii: "#") { continue }
                if first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
                    if keepingLast, !current.isEmpty {
                        current[current.count - 1].value += "\n" + string(bytes, position, stop)
                    }
                    continue
                }
                var colon = position
                while colon < stop && bytes[colon] != UInt8(ascii: ":") { colon += 1 }
                guard colon < stop else { continue }
                if let wanted, !wanted.contains(where: { matches($0, bytes, position, colon) }) {
                    keepingLast = false
                    continue
                }
                let name = string(bytes, position, colon)
                var valueStart = colon + 1
                while valueStart < stop && (bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09) { valueStart += 1 }
                var valueEnd = stop
                while valueEnd > valueStart && (bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09) {
                    valueEnd -= 1
                }
                current.append((name, string(bytes, valueStart, valueEnd)))
                keepingLast = true
            }
            if !current.isEmpty { stanzas.append(Stanza(fields: current)) }
        }
        return stanzas
    }

    /// ASCII case-insensitive equality of `bytes[start..<end]` with the lower-case `name`.
    static func matches(_ name: [UInt8], _ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        guard name.count == end - start else { return false }
        for i in 0..<name.count {
            var c = bytes[start + i]
            if c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") { c |= 0x20 }
            if c != name[i] { return false }
        }
        return true
    }

    static func isBlank(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        for i in start..<end where bytes[i] != 0x20 && bytes[i] != 0x09 { return false }
        return true
    }

    static func string(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
    }
}
