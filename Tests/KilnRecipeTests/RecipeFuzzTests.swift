import Foundation
import KilnKomodo
import KilnTestSupport
import Testing

@testable import KilnRecipe

/// Seeded mutations of the real recipes (and of the matrix file): whatever the bytes, loading ends in recipes
/// or in diagnostics that point into the file, quickly, and never crashes. `make fuzz` runs more cases.
@Suite struct RecipeFuzzTests {
    static let root = KilnBinary.packageRoot

    static func seedFiles() throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for dir in ["recipes", "Tests/Fixtures/golden", "Tests/KilnTestSupport"] {
            for name in try FileManager.default.contentsOfDirectory(atPath: root + "/" + dir)
            where name.hasSuffix(".yaml") || name.hasSuffix(".json") {
                files[dir + "/" + name] = Array(
                    try Data(contentsOf: URL(fileURLWithPath: root + "/" + dir + "/" + name)))
            }
        }
        return files
    }

    static let tokens = [
        "&a ", "*a", "<<: *a\n", "!!binary ", "!!map ", "!custom ", "{{", "}}", "{{args}}", "{{ac_name | lower}}",
        "{{ p2p_port }}", ": ", "- ", "\n  ", "\t", "? ", "|\n", ">-\n", "---\n", "...\n", "%YAML 1.1\n", "#", "'",
        "\"",
        "\\u0000", "[", "]", "{", "}", ",", "matrix: {file: assetchains.json}\n", "mode: 0755\n", "uid: -1\n",
        "name: \"{{ac_name}}\"\n", "\"ac_name\": true,", "null", "1e400", "-0", "\u{FEFF}", "\u{2028}", "é",
    ]

    @Test func mutatedRecipesEndInRecipesOrLocatedErrors() throws {
        let files = try Self.seedFiles()
        let recipes = files.filter { $0.key.hasSuffix(".yaml") }.sorted { $0.key < $1.key }
        let matrix = files["recipes/assetchains.json"]!
        var fuzzer = Fuzzer(seed: Fuzzer.seed, seeds: recipes.map(\.value), tokens: Self.tokens)
        var matrixFuzzer = Fuzzer(seed: Fuzzer.seed &+ 1, seeds: [matrix], tokens: Self.tokens)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-fuzz-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/fuzz.yaml"
        let cases = Fuzzer.cases(default: 1000)
        var outcomes = (recipes: 0, refused: 0, slowest: 0.0)
        var failures = 0
        var slowestCase = 0
        for index in 0..<cases {
            let bytes = fuzzer.next()
            // One case in four also mutates the matrix file the assetchain recipe reads.
            let json = index % 4 == 0 ? matrixFuzzer.next() : matrix
            _ = FileManager.default.createFile(atPath: dir + "/assetchains.json", contents: Data(json))
            let start = Fuzzer.threadCPUSeconds
            let (parsed, problems) = load(bytes, file: file)
            let seconds = Fuzzer.threadCPUSeconds - start
            if seconds > outcomes.slowest { (outcomes.slowest, slowestCase) = (seconds, index) }
            if seconds > 1 { _ = Fuzzer.save(bytes, name: "slow-recipe-\(Fuzzer.seed)-\(index).yaml") }
            if parsed.isEmpty { outcomes.refused += 1 } else { outcomes.recipes += 1 }
            let failure = check(problems, parsed: parsed, bytes: bytes, json: json, file: file, seconds: seconds)
            if let failure {
                let saved = Fuzzer.save(bytes, name: "recipe-\(Fuzzer.seed)-\(index).yaml")
                _ = Fuzzer.save(json, name: "recipe-\(Fuzzer.seed)-\(index).json")
                Issue.record("case \(index) (seed \(Fuzzer.seed), input \(saved)): \(failure)")
                failures += 1
                if failures == 5 { return }
            }
        }
        print(
            "recipe fuzz: \(cases) cases, seed \(Fuzzer.seed): \(outcomes.recipes) gave recipes, \(outcomes.refused) "
                + "refused with located errors, slowest \(String(format: "%.3f", outcomes.slowest)) s (case \(slowestCase)), peak memory "
                + "\(Fuzzer.peakMemory >> 20) MB")
        #expect(outcomes.refused > 0 && outcomes.recipes > 0, "the mutations should reach both outcomes")
    }

    func load(_ bytes: [UInt8], file: String) -> ([Recipe], [Diagnostic]) {
        switch RecipeLimits.text(Data(bytes), file: file) {
        case .success(let text): return RecipeSet.parse(text, file: file, derivations: [KomodoMatrix()])
        case .failure(let problem): return ([], [problem])
        }
    }

    /// Nil when the outcome is acceptable, else what is wrong with it.
    func check(
        _ problems: [Diagnostic], parsed: [Recipe], bytes: [UInt8], json: [UInt8], file: String, seconds: Double
    ) -> String? {
        // A debug build on a loaded machine: the slowest case takes 0.5 s alone and 3 s in the full suite; the
        // hangs this guards against took 40 s to minutes.
        if seconds > 8 { return "took \(seconds) s" }
        if parsed.isEmpty && problems.isEmpty { return "no recipe and no error" }
        for problem in problems {
            let source = problem.location.file == file ? bytes : json
            let lines = source.reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
            if problem.location.file != file && !problem.location.file.hasSuffix("/assetchains.json") {
                return "error in an unexpected file: \(problem)"
            }
            if problem.location.line < 1 || problem.location.line > lines || problem.location.column < 1 {
                return "location outside the file (\(lines) lines): \(problem)"
            }
            for raw in ["Error Domain", "DecodingError", "NSCocoaErrorDomain", "couldn’t be", "YamlError", "Optional("]
            where problem.description.contains(raw) {
                return "raw error text: \(problem)"
            }
            if problem.description.count > 2_000 { return "a \(problem.description.count)-character message" }
        }
        return nil
    }
}
