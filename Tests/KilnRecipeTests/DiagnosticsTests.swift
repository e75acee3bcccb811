import Foundation
import KilnKomodo
import KilnOCI
import Testing

@testable import KilnRecipe

/// Broken recipes: each must give the exact location and message, and every problem at once.
@Suite struct DiagnosticsTests {
    func problems(_ yaml: String) -> [String] {
        RecipeSet.parse(yaml, file: "r.yaml", derivations: [KomodoMatrix()]).1.map {
            "\($0.location.line):\($0.location.column): \($0.message)"
        }
    }

    static let cases: [(String, [String])] = [
        (
            "name: a\nversion: '1'\nlayers:\n  - name: l\n    add:\n      - src: f\n        to: /x\n        platforms: linux/arm64\n",
            ["6:9: 'linux/arm64' is not one of the recipe's platforms (linux/amd64)"]
        ),
        (
            "name: a\nversion: '1'\nplatforms: [linux/amd64, linux/arm64]\nlayers:\n  - name: l\n    platforms: [linux/arm64]\n    add:\n      - {src: f, to: /x, platforms: [linux/amd64]}\n",
            ["5:5: layer 'l' adds nothing on any platform it is built for"]
        ),
        (
            "name: a\nversion: '1'\nlayers:\n  - name: l\n    platforms: []\n    dirs: [/a]\n",
            ["5:16: platforms is empty"]
        ),
        (
            "name: a\nversion: '1'\nlayrs: []\n",
            ["3:1: unknown key 'layrs' in a recipe", "1:1: an image from scratch needs at least one layer"]
        ),
        ("name: a\nversion: '1'\nlayers:\n  - name: l\n", ["4:5: layer 'l' adds nothing"]),
        ("name: A_b\nversion: '1'\nbase: x\n", ["1:7: 'A_b' is not a valid image name"]),
        ("name: a\nversion: 'v 1'\nbase: x\n", ["2:10: version 'v 1' is not a valid OCI tag"]),
        ("version: '1'\nbase: x\n", ["1:1: a recipe needs a name"]),
        (
            "name: a\nversion: '1'\nlayers:\n  - name: l\n    add:\n      - src: f\n        to: /x\n        mode: \"0999\"\n",
            ["8:15: '0999' is not a file mode"]
        ),
        (
            "name: a\nversion: '1'\nlayers:\n  - name: l\n    dirs: [/a]\n  - name: l\n    dirs: [/b]\n",
            ["6:5: duplicate layer name 'l' (first at line 4)"]
        ),
        (
            "name: a\nversion: '1'\nlayers:\n  - name: l\n    add:\n      - url: https://x/y.zip\n        sha256: abc\n        to: /x\n",
            ["7:17: 'abc' is not a sha256"]
        ),
        (
            "name: a\nversion: '1'\nbase: docker.io/library/debian:12\n",
            ["3:7: base image 'docker.io/library/debian:12' is not pinned by digest"]
        ),
        (
            "name: a\nversion: '1'\nbase: x\nentrypoint: /bin/sh\n",
            ["4:13: entrypoint must be a list, not a single value"]
        ),
        ("name: a\nversion: '1'\nbase: x\nports: [\"http\"]\n", ["4:8: 'http' is not a port"]),
        (
            "name: a\nversion: '1'\nbase: x\nworkdir: data\n",
            ["4:10: workdir 'data' must be an absolute path in the image"]
        ),
        ("name: a\nversion: '1'\nbase: x\nstop-signal: SIGFOO\n", ["4:14: unknown stop signal 'SIGFOO'"]),
        ("name: a\nversion: '1'\nbase: x\nuser: [a]\n", ["4:7: user must be a single value, not a list"]),
        ("name: a\nversion: '1'\nbase: x\nenv: [FOO]\n", ["4:6: env entry 'FOO' is not NAME=value"]),
        (
            "name: a\nversion: '1'\nlayers:\n  - name: l\n    add:\n      - src: ../secret\n        to: /x\n",
            ["6:14: `src` must stay inside the recipe's directory"]
        ),
        ("name: a\nversion: '1'\nbase: x\nname: b\n", ["4:1: 'name' is given twice"]),
        ("name: a\n  version: 1\n", ["2:10: YAML syntax: mapping values are not allowed in this context"]),
    ]

    @Test(arguments: 0..<cases.count) func brokenRecipe(_ index: Int) {
        let (yaml, expected) = Self.cases[index]
        #expect(problems(yaml).sorted() == expected.sorted())
    }

    /// A layer's and an entry's `platforms:` decide which platform's image takes them; the rest go everywhere.
    @Test func platformSelectorsPickItemsPerPlatform() throws {
        let yaml = """
            name: a
            version: '1'
            platforms: [linux/amd64, linux/arm64]
            layers:
              - name: bin
                add:
                  - {url: "https://x/amd64/tool", to: /tool, platforms: linux/amd64}
                  - {url: "https://x/arm64/tool", to: /tool, platforms: [linux/arm64]}
                  - {src: README, to: /README}
              - name: arm
                platforms: [linux/arm64]
                dirs: [/arm]
            """
        let (recipes, problems) = RecipeSet.parse(yaml, file: "r.yaml", derivations: [KomodoMatrix()])
        #expect(problems.isEmpty, "\(problems)")
        let recipe = try #require(recipes.first)
        func urls(_ platform: String) throws -> [String] {
            let p = try #require(Platform(parsing: platform))
            return recipe.layers.compactMap { $0.selected(for: p) }.flatMap(\.items).map { item in
                switch item {
                case .add(let add):
                    if case .remote(let url, _, _) = add.source { return url }
                    return "src"
                case .directory(let dir): return dir.path
                default: return "?"
                }
            }
        }
        #expect(try urls("linux/amd64") == ["https://x/amd64/tool", "src"])
        #expect(try urls("linux/arm64") == ["https://x/arm64/tool", "src", "/arm"])
        #expect(recipe.selectedLayers.flatMap(\.items).count == 4)
        let narrowed = try #require(recipe.narrowed(to: [Platform(architecture: "arm64")]))
        #expect(narrowed.platforms.map(\.description) == ["linux/arm64"])
        #expect(narrowed.declaredPlatforms.count == 2)
        #expect(narrowed.selectedLayers.flatMap(\.items).count == 3)
        #expect(recipe.narrowed(to: [Platform(architecture: "s390x")]) == nil)
    }

    @Test func everyProblemIsReportedAtOnce() {
        let yaml = "name: a\nversion: '1'\nbase: x\nworkdir: data\nports: [x]\nstop-signal: NOPE\ncolour: red\n"
        #expect(problems(yaml).count == 4)
    }

    @Test func unknownKeySuggestsTheNearestOne() {
        let d = RecipeSet.parse(
            "name: a\nversion: '1'\nbase: x\nentrypiont: [/x]\n", file: "r.yaml", derivations: [KomodoMatrix()]
        ).1
        #expect(d.first?.hint == "did you mean `entrypoint`?")
        #expect(
            d.first?.description
                == "r.yaml:4:1: error: unknown key 'entrypiont' in a recipe\n    hint: did you mean `entrypoint`?")
    }

    @Test func parsesAFullRecipe() throws {
        let yaml = """
            name: komodod
            version: 0.9.0
            tags: [latest]
            base: runtime
            layers:
              - name: bin
                add:
                  - src: bin/*
                    to: /usr/local/bin/
                    mode: "0755"
                  - url: https://example.com/k.zip
                    sha256: \(String(repeating: "ab", count: 32))
                    extract: [komodod, komodo-cli]
                    to: /usr/local/bin/
            users:
              - name: komodo
                uid: 3003
            env: {A: "1", B: two}
            entrypoint: [/usr/local/bin/komodod]
            cmd: [-printtoconsole]
            ports: [7770, 7771/tcp]
            volumes: [/home/komodo/.komodo]
            stop-signal: SIGINT
            """
        let (recipes, problems) = RecipeSet.parse(yaml, file: "/r/komodod.yaml", derivations: [KomodoMatrix()])
        #expect(problems.isEmpty)
        let r = try #require(recipes.first)
        #expect(r.name == "komodod" && r.version == "0.9.0" && r.allTags == ["0.9.0", "latest"])
        #expect(r.base == .recipe("runtime"))
        #expect(r.settings.env == ["A=1", "B=two"])
        #expect(r.settings.exposedPorts?.keys.sorted() == ["7770/tcp", "7771/tcp"])
        #expect(r.users.first?.gid == 3003 && r.users.first?.home == "/home/komodo")
        guard case .add(let remote) = r.layers[0].items[1], case .remote(let url, let sha, let extract) = remote.source
        else {
            Issue.record("expected a url input")
            return
        }
        #expect(url == "https://example.com/k.zip" && sha != nil && extract == ["komodod", "komodo-cli"])
        #expect(remote.location.line == 11)
    }
}

@Suite struct RecipeSetTests {
    func write(_ files: [String: String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-set-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
        return dir
    }

    @Test func ordersBasesFirst() throws {
        let dir = try write([
            "a.yaml": "name: a\nversion: '1'\nbase: b\n",
            "b.yaml": "name: b\nversion: '1'\nbase: c\n",
            "c.yaml": "name: c\nversion: '1'\nlayers: [{name: l, dirs: [/x]}]\n",
        ])
        let set = try RecipeSet.load(paths: [dir], derivations: [KomodoMatrix()])
        #expect(set.recipes.map(\.name) == ["c", "b", "a"])
        #expect(set.closure(of: ["b"]).map(\.name) == ["c", "b"])
    }

    @Test func reportsCyclesAtEachBaseLine() throws {
        let dir = try write([
            "a.yaml": "name: a\nversion: '1'\nbase: b\n",
            "b.yaml": "name: b\nversion: '1'\nbase: a\n",
        ])
        #expect {
            try RecipeSet.load(paths: [dir], derivations: [KomodoMatrix()])
        } throws: { error in
            let d = (error as! RecipeError).diagnostics
            return d.count == 2
                && d.allSatisfy {
                    $0.message == "recipes form a cycle: a → b → a" || $0.message == "recipes form a cycle: b → a → b"
                }
                && Set(
                    d.map {
                        "\(($0.location.file as NSString).lastPathComponent):\($0.location.line):\($0.location.column)"
                    })
                    == ["a.yaml:3:7", "b.yaml:3:7"]
        }
    }

    @Test func unknownBaseSuggestsAName() throws {
        let dir = try write([
            "a.yaml": "name: a\nversion: '1'\nbase: komodo\n",
            "b.yaml": "name: komodod\nversion: '1'\nlayers: [{name: l, dirs: [/x]}]\n",
        ])
        #expect {
            try RecipeSet.load(paths: [dir], derivations: [KomodoMatrix()])
        } throws: { error in
            let d = (error as! RecipeError).diagnostics
            return d.count == 1 && d[0].message == "base 'komodo' is not a recipe in this build"
                && d[0].hint == "did you mean `komodod`?"
        }
    }

    @Test func duplicateImageNames() throws {
        let dir = try write([
            "a.yaml": "name: x\nversion: '1'\nlayers: [{name: l, dirs: [/x]}]\n",
            "b.yaml": "name: x\nversion: '1'\nlayers: [{name: l, dirs: [/x]}]\n",
        ])
        #expect(throws: RecipeError.self) { try RecipeSet.load(paths: [dir], derivations: [KomodoMatrix()]) }
    }
}

@Suite struct MatrixTests {
    func expand(_ json: String, _ yaml: String) throws -> ([Recipe], [Diagnostic]) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-matrix-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try json.write(toFile: dir + "/chains.json", atomically: true, encoding: .utf8)
        return RecipeSet.parse(yaml, file: dir + "/ac.yaml", derivations: [KomodoMatrix()])
    }

    static let recipe = """
        matrix: {file: chains.json}
        name: "{{ac_name | lower}}"
        version: "1"
        base: komodod
        cmd: [-printtoconsole, "{{args}}"]
        labels: {chain: "{{ac_name}}"}
        """

    @Test func oneImagePerEntryWithKomododArguments() throws {
        let json = """
            [{"ac_name": "DEX", "ac_supply": 999999, "ac_reward": 0, "addnode": ["1.2.3.4", "5.6.7.8"]},
             {"ac_name": "BOTS", "ac_supply": 999999, "ac_cc": 2}]
            """
        let (recipes, problems) = try expand(json, Self.recipe)
        #expect(problems.isEmpty)
        #expect(recipes.map(\.name) == ["dex", "bots"])
        #expect(
            recipes[0].settings.cmd == [
                "-printtoconsole", "-ac_name=DEX", "-ac_reward=0", "-ac_supply=999999", "-addnode=1.2.3.4",
                "-addnode=5.6.7.8",
            ])
        #expect(recipes[1].settings.cmd == ["-printtoconsole", "-ac_name=BOTS", "-ac_cc=2", "-ac_supply=999999"])
        #expect(recipes[1].settings.labels == ["chain": "BOTS"])
    }

    @Test func missingFieldNamesTheTemplateLine() throws {
        let yaml = Self.recipe + "\nenv: {P2P: \"{{notary}}\"}\n"
        let (_, problems) = try expand(#"[{"ac_name": "DEX", "notary": 1}, {"ac_name": "BOTS"}]"#, yaml)
        #expect(problems.count == 1)
        #expect(problems.first?.message == "template field 'notary' is missing from matrix entry BOTS")
        #expect(problems.first?.location.line == 7)
    }
}
