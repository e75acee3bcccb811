import Foundation
import Testing

@testable import KilnRecipe

/// The `builds:` section and `add: {from: …}`: a full recipe parses into the model, and every mistake is
/// reported at its line and column.
@Suite struct BuildsTests {
    static let commit = "2f846c0aa790516c49299914488623ecb31b1d2b"
    static let tree = "e8aa547cd2a9c0b418d1082bbabbe4f75aad79a2"

    func problems(_ yaml: String) -> [String] {
        RecipeSet.parse(yaml, file: "r.yaml").1.map { "\($0.location.line):\($0.location.column): \($0.message)" }
    }

    /// A valid recipe around one build, with `build` lines spliced in (indented under `- name: b`).
    static func recipe(_ build: String, add: String = "{from: b, src: tool, to: /usr/bin/}") -> String {
        """
        name: a
        version: '1'
        builds:
          - name: b
        \(build)
        layers:
          - name: l
            add:
              - \(add)
        """
    }

    static let valid = """
            environment: {suite: bookworm, packages: [gcc]}
            run: make
            outputs: [/out/tool]
        """

    @Test func parsesBuildsAndTheirOutputsInLayers() throws {
        let yaml = """
            name: iguana
            version: '1'
            base: iguana-runtime
            builds:
              - name: iguana-build
                environment:
                  suite: bookworm
                  packages: [clang, make, libnanomsg-dev]
                sources:
                  dpow: {git: https://github.com/KomodoPlatform/dPoW, commit: \(Self.commit), tree: \(Self.tree)}
                  patches: {dir: patches}
                  extra: {url: https://example.com/x.tar.gz, sha256: \(String(repeating: "cd", count: 32))}
                run: |
                  cp -a /src/dpow /work/dpow
                  make -C /work/dpow/iguana
                outputs: [/out/iguana, /work/dpow/iguana/elected]
                env: {CC: clang}
                timeout: 1800
              - name: tiny
                environment: {suite: bookworm, packages: [busybox]}
                run: [busybox, cp, /bin/busybox, /out/]
                outputs: [/out/]
            layers:
              - name: bin
                add:
                  - {from: iguana-build, src: iguana, to: /usr/local/bin/iguana, mode: "0755"}
                  - {from: iguana-build, src: /work/dpow/iguana/elected, to: /home/iguana/elected}
                  - {from: tiny, src: /out/busybox, to: /bin/}
            """
        let (recipes, problems) = RecipeSet.parse(yaml, file: "/r/iguana.yaml")
        #expect(problems.isEmpty, "\(problems)")
        let r = try #require(recipes.first)
        #expect(r.builds.map(\.name) == ["iguana-build", "tiny"])
        let build = r.builds[0]
        #expect(build.environment.suite == "bookworm" && build.environment.packages.count == 3)
        #expect(build.sources.map(\.name) == ["dpow", "patches", "extra"])
        #expect(
            build.sources[0].kind
                == .git(url: "https://github.com/KomodoPlatform/dPoW", commit: Self.commit, tree: Self.tree))
        #expect(build.sources[1].kind == .directory(path: "patches"))
        #expect(build.run == .script("cp -a /src/dpow /work/dpow\nmake -C /work/dpow/iguana\n"))
        #expect(build.run.command.prefix(3) == ["/bin/sh", "-e", "-c"])
        #expect(build.outputs == ["/out/iguana", "/work/dpow/iguana/elected"])
        #expect(build.env == ["CC": "clang"] && build.timeout == 1800 && build.location.line == 5)
        #expect(
            r.builds[1].run == .argv(["busybox", "cp", "/bin/busybox", "/out/"]) && r.builds[1].outputs == ["/out"])
        #expect(r.builds[1].timeout == BuildSpec.defaultTimeout)
        let adds = r.layers[0].items.compactMap { item -> AddSpec.Source? in
            if case .add(let add) = item { return add.source }
            return nil
        }
        #expect(
            adds == [
                .build(name: "iguana-build", path: "/out/iguana"),
                .build(name: "iguana-build", path: "/work/dpow/iguana/elected"),
                .build(name: "tiny", path: "/out/busybox"),
            ])
    }

    static let cases: [(String, [String])] = [
        ("    run: make\n    outputs: [/out/tool]", ["4:5: a build needs an `environment`"]),
        (
            "    environment: {suite: bookworm, packages: [gcc], split: per-package}\n    run: make\n    outputs: [/out/tool]",
            ["5:53: `split` has no meaning for a build environment"]
        ),
        ("    environment: {suite: bookworm, packages: [gcc]}\n    outputs: [/out/tool]", ["4:5: a build needs `run`"]),
        ("    environment: {suite: bookworm, packages: [gcc]}\n    run: make", ["4:5: a build needs `outputs`"]),
        (valid + "\n    sources:\n      s: {git: https://x/y}", ["9:10: git source 's' is not pinned to a commit"]),
        (
            valid + "\n    sources:\n      s: {git: https://x/y, commit: main}",
            ["9:37: commit 'main' is not a full git object id"]
        ),
        (
            valid + "\n    sources:\n      s: {git: https://x/y, commit: \(commit), tree: abc}",
            ["9:85: tree 'abc' is not a full git object id"]
        ),
        (
            valid + "\n    sources:\n      s: {git: https://x/y, url: https://x/y.tgz}",
            ["9:10: source 's' takes one of `git`, `url` or `dir`, not `git` and `url`"]
        ),
        (valid + "\n    sources:\n      s: {url: https://x/y.tgz}", ["9:10: source 's' needs a `sha256`"]),
        (valid + "\n    sources:\n      s: {dir: ../up}", ["9:16: `dir` must stay inside the recipe's directory"]),
        (valid + "\n    sources:\n      S x: {dir: a}", ["9:7: 'S x' cannot name a source"]),
        (valid + "\n    sources:\n      s: {dir: a, sha256: b}", ["9:19: `sha256` does not apply to a `dir` source"]),
        (
            "    environment: {suite: bookworm, packages: [gcc]}\n    run: make\n    outputs: [/etc/x]",
            ["7:14: output '/etc/x' is outside /out and /work"]
        ),
        (
            "    environment: {suite: bookworm, packages: [gcc]}\n    run: make\n    outputs: [out/x]",
            ["7:14: output 'out/x' must be an absolute path in the image"]
        ),
        (valid + "\n    timeout: forever", ["8:14: timeout must be a number of seconds from 1 to 86400"]),
        (valid + "\n    limits: {disk: lots}", ["8:20: 'lots' is not a size of at least 1MiB for `disk`"]),
        (valid + "\n    limits: {tmp: 10KiB}", ["8:19: '10KiB' is not a size of at least 1MiB for `tmp`"]),
        (valid + "\n    limits: {processes: 2}", ["8:25: processes must be a number from 16 to 1000000"]),
        (valid + "\n    limits: {memory: 1GiB}", ["8:14: unknown key 'memory' in a build's limits"]),
        (valid + "\n    env: {1X: a}", ["8:11: '1X' is not a variable name"]),
        (valid + "\n    colour: red", ["8:5: unknown key 'colour' in a build"]),
        (
            "    environment: {suite: bookworm, packages: [gcc]}\n    run: {a: b}\n    outputs: [/out/tool]",
            ["6:10: run must be a script or a list, not a map"]
        ),
    ]

    @Test(arguments: 0..<cases.count) func brokenBuild(_ index: Int) {
        let (build, expected) = Self.cases[index]
        #expect(problems(Self.recipe(build)).sorted() == expected.sorted())
    }

    @Test func limitsRaiseTheSandboxBounds() throws {
        let yaml = Self.recipe(Self.valid + "\n    limits: {tmp: 4GiB, disk: 512 MiB, log: 1048576, processes: 2048}")
        let (recipes, problems) = RecipeSet.parse(yaml, file: "r.yaml")
        #expect(problems.isEmpty, "\(problems)")
        let limits = try #require(recipes.first?.builds.first?.limits)
        #expect(limits == BuildLimits(tmp: 4 << 30, disk: 512 << 20, log: 1 << 20, processes: 2048))
        let plain = RecipeSet.parse(Self.recipe(Self.valid), file: "r.yaml").0.first?.builds.first?.limits
        #expect(plain == BuildLimits())
    }

    @Test func layersMustNameABuildAndOneOfItsOutputs() {
        #expect(
            problems(Self.recipe(Self.valid, add: "{from: c, src: tool, to: /usr/bin/}"))
                == ["11:9: no build named 'c' in this recipe"])
        #expect(
            problems(Self.recipe(Self.valid, add: "{from: b, src: other, to: /usr/bin/}"))
                == ["11:9: '/out/other' is not an output of build 'b'"])
        #expect(
            problems(Self.recipe(Self.valid, add: "{from: b, to: /usr/bin/}")) == ["11:9: `from: b` needs `src`"])
        #expect(
            problems(Self.recipe(Self.valid, add: "{from: b, src: tool, url: https://x/y, to: /usr/bin/}"))
                == ["11:35: `url` does not apply to `from:` (a build's output)"])
        let duplicate = Self.recipe(Self.valid + "\n  - name: b\n" + Self.valid)
        #expect(problems(duplicate) == ["8:11: duplicate build name 'b' (first at line 4)"])
    }
}
