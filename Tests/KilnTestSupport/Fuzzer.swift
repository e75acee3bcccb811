import Foundation

/// Seeded mutation of real input files for the fuzz tests: the same seed gives the same cases on every
/// machine, so a failure names its seed and case and reproduces. `make test` runs a few thousand cases;
/// `make fuzz` raises the count with KILN_FUZZ_CASES and varies the seed with KILN_FUZZ_SEED.
public struct Fuzzer {
    /// SplitMix64: tiny, fast, and the same everywhere (the standard library's generator is not seedable).
    public struct Generator: RandomNumberGenerator {
        var state: UInt64
        public init(seed: UInt64) { state = seed }
        public mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Cases to run: KILN_FUZZ_CASES, else `default`.
    public static func cases(default count: Int) -> Int {
        ProcessInfo.processInfo.environment["KILN_FUZZ_CASES"].flatMap(Int.init) ?? count
    }

    /// The seed: KILN_FUZZ_SEED, else a fixed one.
    public static var seed: UInt64 {
        ProcessInfo.processInfo.environment["KILN_FUZZ_SEED"].flatMap { UInt64($0) } ?? 0x4B49_4C4E
    }

    public var random: Generator
    public let seeds: [[UInt8]]
    /// Fragments that reach the parsers' corners: YAML anchors, aliases, merge keys, tags, flow and block
    /// syntax, templates, control and non-UTF-8 bytes, JSON structure.
    public let tokens: [[UInt8]]

    public init(seed: UInt64, seeds: [[UInt8]], tokens: [String]) {
        random = Generator(seed: seed)
        self.seeds = seeds
        self.tokens =
            tokens.map { Array($0.utf8) } + [[0x00], [0xFF], [0xC3], [0xED, 0xA0, 0x80], [0xEF, 0xBB, 0xBF]]
    }

    /// One case: a seed file with one to three mutations.
    public mutating func next() -> [UInt8] {
        var bytes = seeds[Int.random(in: 0..<seeds.count, using: &random)]
        for _ in 0..<Int.random(in: 1...3, using: &random) { bytes = mutate(bytes) }
        return bytes
    }

    mutating func position(_ bytes: [UInt8]) -> Int { Int.random(in: 0...bytes.count, using: &random) }

    mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        switch Int.random(in: 0..<10, using: &random) {
        case 0:  // bit flips
            guard !bytes.isEmpty else { return bytes }
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            }
        case 1:  // truncation
            bytes = Array(bytes[..<position(bytes)])
        case 2:  // splice a piece of another seed
            let other = seeds[Int.random(in: 0..<seeds.count, using: &random)]
            let a = position(other)
            let b = min(other.count, a + Int.random(in: 0...200, using: &random))
            bytes.insert(contentsOf: other[a..<b], at: position(bytes))
        case 3:  // delete a range
            let a = position(bytes)
            bytes.removeSubrange(a..<min(bytes.count, a + Int.random(in: 1...64, using: &random)))
        case 4:  // repeat a range
            let a = position(bytes)
            let piece = bytes[a..<min(bytes.count, a + Int.random(in: 1...40, using: &random))]
            let times = Int.random(in: 2...200, using: &random)
            bytes.insert(contentsOf: Array(repeating: Array(piece), count: times).joined(), at: a)
        case 5:  // deep nesting
            let depth = Int.random(in: 50...3000, using: &random)
            let open: [UInt8] = [[0x5B], [0x7B], Array("{\"a\":".utf8), Array("- ".utf8)][
                Int.random(in: 0..<4, using: &random)]
            bytes.insert(contentsOf: Array(repeating: open, count: depth).joined(), at: position(bytes))
        case 6:  // a huge scalar
            let byte = [UInt8(ascii: "A"), UInt8(ascii: "{"), UInt8(ascii: "9"), UInt8(ascii: " "), 0xE9][
                Int.random(in: 0..<5, using: &random)]
            bytes.insert(
                contentsOf: [UInt8](repeating: byte, count: 1 << Int.random(in: 10...18, using: &random)),
                at: position(bytes))
        case 7:  // an alias bomb
            let width = Int.random(in: 2...9, using: &random)
            let depth = Int.random(in: 2...8, using: &random)
            var text = "\nb0: &b0 [" + Array(repeating: "\"{{ac_name}}\"", count: width).joined(separator: ",") + "]\n"
            for level in 1..<depth {
                text +=
                    "b\(level): &b\(level) ["
                    + Array(repeating: "*b\(level - 1)", count: width).joined(
                        separator: ",") + "]\n"
            }
            bytes.insert(contentsOf: Array(text.utf8), at: Int.random(in: 0...1, using: &random) == 0 ? 0 : bytes.count)
        default:  // a token
            let token = tokens[Int.random(in: 0..<tokens.count, using: &random)]
            bytes.insert(contentsOf: token, at: position(bytes))
        }
        return bytes
    }

    /// Where a failing case is kept for reproduction.
    public static func save(_ bytes: [UInt8], name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.path + "/kiln-fuzz-failures"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/" + name
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    /// CPU time the calling thread has used, in seconds. A fuzz case's bound is on this, not on the wall clock:
    /// in the full suite a case can wait seconds for a core (one took 8.5 s of wall time and 0.45 s of CPU).
    public static var threadCPUSeconds: Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// Peak resident memory of this process so far, in bytes (Linux; 0 elsewhere).
    public static var peakMemory: Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return 0 }
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * 1024 : 0
    }
}
