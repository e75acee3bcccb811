/// A Debian version, `[epoch:]upstream[-revision]`, ordered as dpkg orders them (deb-version(7)).
public struct DebianVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let epoch: Int
    public let upstream: String
    public let revision: String
    public let description: String

    public init(_ text: String) {
        description = text
        var rest = Substring(text)
        if let colon = rest.firstIndex(of: ":"), let value = Int(rest[..<colon]) {
            epoch = value
            rest = rest[rest.index(after: colon)...]
        } else {
            epoch = 0
        }
        // The revision is what follows the last hyphen; without one, the revision is empty ("0").
        if let hyphen = rest.lastIndex(of: "-") {
            upstream = String(rest[..<hyphen])
            revision = String(rest[rest.index(after: hyphen)...])
        } else {
            upstream = String(rest)
            revision = ""
        }
    }

    public static func < (a: DebianVersion, b: DebianVersion) -> Bool { compare(a, b) < 0 }

    public static func == (a: DebianVersion, b: DebianVersion) -> Bool { compare(a, b) == 0 }

    public func hash(into hasher: inout Hasher) {
        // Equal versions may be spelled differently ("1.0" and "0:1.0"): hash the canonical parts.
        hasher.combine(epoch)
        hasher.combine(upstream)
        hasher.combine(revision == "0" ? "" : revision)
    }

    public static func compare(_ a: DebianVersion, _ b: DebianVersion) -> Int {
        if a.epoch != b.epoch { return a.epoch < b.epoch ? -1 : 1 }
        let upstream = compareFragment(Array(a.upstream.utf8), Array(b.upstream.utf8))
        if upstream != 0 { return upstream }
        return compareFragment(Array(a.revision.utf8), Array(b.revision.utf8))
    }

    /// dpkg's order for the non-digit parts: `~` before everything (even the end), then the end, then
    /// letters, then everything else by ASCII.
    static func order(_ c: UInt8?) -> Int {
        guard let c else { return 0 }
        if c == UInt8(ascii: "~") { return -1 }
        if (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c) {
            return Int(c)
        }
        return Int(c) + 256
    }

    static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    /// Alternating non-digit and digit runs; digit runs compare numerically (any length, no overflow).
    static func compareFragment(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var i = 0
        var j = 0
        while i < a.count || j < b.count {
            while (i < a.count && !isDigit(a[i])) || (j < b.count && !isDigit(b[j])) {
                let x = order(i < a.count && !isDigit(a[i]) ? a[i] : nil)
                let y = order(j < b.count && !isDigit(b[j]) ? b[j] : nil)
                if x != y { return x < y ? -1 : 1 }
                if i < a.count && !isDigit(a[i]) { i += 1 }
                if j < b.count && !isDigit(b[j]) { j += 1 }
            }
            while i < a.count && a[i] == UInt8(ascii: "0") { i += 1 }
            while j < b.count && b[j] == UInt8(ascii: "0") { j += 1 }
            var startI = i
            var startJ = j
            while i < a.count && isDigit(a[i]) { i += 1 }
            while j < b.count && isDigit(b[j]) { j += 1 }
            let lengthA = i - startI
            let lengthB = j - startJ
            if lengthA != lengthB { return lengthA < lengthB ? -1 : 1 }
            while startI < i {
                if a[startI] != b[startJ] { return a[startI] < b[startJ] ? -1 : 1 }
                startI += 1
                startJ += 1
            }
        }
        return 0
    }
}
