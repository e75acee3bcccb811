import Foundation
import KilnStore
import KilnTestSupport
import Testing

/// What operators expect of any CLI: a version, read-only commands that never write, one JSON envelope.
@Suite struct CLIConventionsTests {
    @Test func versionNamesKilnAndTheEncoding() throws {
        let out = try KilnBinary.run(["--version"]).stdout
        #expect(out.range(of: #"^kiln \d+\.\d+\.\d+ \(encoding \d+\)\n$"#, options: .regularExpression) != nil)
    }

    /// Every command path ArgumentParser knows (`build`, …, and nested ones), read from its own dump, so a
    /// command added later is walked without anyone listing it here.
    func commandPaths() throws -> [[String]] {
        let dump = try KilnBinary.run(["--experimental-dump-help"]).stdout
        let tool = try #require(try JSONSerialization.jsonObject(with: Data(dump.utf8)) as? [String: Any])
        var paths: [[String]] = []
        func walk(_ command: [String: Any], _ path: [String]) {
            for sub in command["subcommands"] as? [[String: Any]] ?? [] {
                guard let name = sub["commandName"] as? String else { continue }
                paths.append(path + [name])
                walk(sub, path + [name])
            }
        }
        walk(try #require(tool["command"] as? [String: Any]), [])
        return paths
    }

    /// `--help`, `-h` and `kiln help CMD` print the command's help on stdout and exit 0, for every command.
    @Test func everyCommandsHelpExitsZeroWithItsUsage() throws {
        let paths = try commandPaths()
        #expect(paths.count >= 20 && paths.contains(["build"]) && paths.contains(["lock"]), "\(paths)")
        for path in paths where path != ["help"] {
            let usage = "USAGE: kiln \(path.joined(separator: " "))"
            for arguments in [path + ["--help"], path + ["-h"], ["help"] + path] {
                let result = try KilnBinary.run(arguments, check: false)
                #expect(result.status == 0, "kiln \(arguments.joined(separator: " ")): \(result.stderr)")
                #expect(result.stdout.contains(usage), "kiln \(arguments.joined(separator: " ")): \(result.stdout)")
                #expect(!result.stderr.contains("Error"), "kiln \(arguments.joined(separator: " ")): \(result.stderr)")
            }
        }
        // The root: bare `kiln`, --help, -h and `kiln help` all print the overview with every command.
        for arguments in [[], ["--help"], ["-h"], ["help"]] {
            let result = try KilnBinary.run(arguments, check: false)
            #expect(result.status == 0, "kiln \(arguments): \(result.stderr)")
            #expect(result.stdout.contains("USAGE: kiln <subcommand>"), "kiln \(arguments): \(result.stdout)")
            #expect(result.stdout.contains("SUBCOMMANDS:") && result.stdout.contains("build"), "kiln \(arguments)")
        }
        // Shell completion, as README documents it.
        let completion = try KilnBinary.run(["--generate-completion-script", "bash"])
        #expect(completion.stdout.contains("_kiln"))
    }

    /// Every command that runs something (all but the groups of subcommands, such as `key`) lists `--verbose`
    /// and `--debug` in its help: one shared option group, whether the command touches the network or not.
    @Test func everyCommandsHelpListsVerboseAndDebug() async throws {
        let paths = try commandPaths()
        let groups = Set(paths.filter { $0.count > 1 }.map { Array($0.dropLast()) })
        #expect(paths.contains(["gc"]) && paths.contains(["key", "generate"]) && groups.contains(["key"]), "\(paths)")
        for path in paths where path != ["help"] && !groups.contains(path) {
            let help = try KilnBinary.run(path + ["--help"], check: false)
            let command = "kiln \(path.joined(separator: " "))"
            #expect(help.status == 0, "\(command) --help: \(help.stderr)")
            #expect(help.stdout.contains("--verbose") && help.stdout.contains("--debug"), "\(command): \(help.stdout)")
        }
        // A command that never touches the network passes the level down too: gc logs its decisions.
        try await withTemporaryDirectory("kiln-gc-verbose") { tmp in
            _ = try OCILayout(root: tmp.path)
            let verbose = try KilnBinary.run(["gc", "--dry-run", "--verbose", "--store", tmp.path], check: false)
            #expect(verbose.status == 0 && verbose.stderr.contains("gc: 0 blobs reachable"), "\(verbose.stderr)")
            let plain = try KilnBinary.run(["gc", "--dry-run", "--store", tmp.path], check: false)
            #expect(plain.status == 0 && !plain.stderr.contains("gc: 0 blobs reachable"), "\(plain.stderr)")
        }
    }

    @Test func readOnlyCommandsNeverCreateAStore() async throws {
        try await withTemporaryDirectory("kiln-readonly") { tmp in
            let store = tmp.path + "/images"
            for arguments in [
                ["images"], ["inspect", "komodod:1"], ["export", "komodod:1", "-o", tmp.path + "/out.tar"],
                ["gc", "--dry-run"], ["fsck"], ["untag", "komodod:1"],
            ] {
                let result = try KilnBinary.run(arguments + ["--store", store], check: false)
                #expect(result.status == 2, "\(arguments): no store is exit 2, as README's table says")
                #expect(result.stderr.contains("no image store at \(store)"), "\(arguments): \(result.stderr)")
            }
            // Nothing was written: neither the store nor anything beside it.
            #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == [])
        }
    }

    @Test func exitCodesAreTheDocumentedOnes() async throws {
        try await withTemporaryDirectory("kiln-exit") { tmp in
            let store = tmp.path + "/images"
            try FileManager.default.createDirectory(atPath: tmp.path + "/r", withIntermediateDirectories: true)
            try "name: x\nversion: '1'\nbase: scratch\nbogus: 1\n".write(
                toFile: tmp.path + "/r/x.yaml", atomically: true, encoding: .utf8)
            // 65: a bad recipe, with its location.
            let recipe = try KilnBinary.run(["build", tmp.path + "/r", "--store", store], check: false)
            #expect(recipe.status == 65)
            #expect(recipe.stderr.contains("x.yaml:4:1"))
            #expect(!recipe.stderr.contains("Error: "), "a located diagnostic is printed as it is")
            // With --json, a bad recipe (as any error) is also a JSON document on stdout.
            let recipeJSON = try KilnBinary.run(["build", tmp.path + "/r", "--store", store, "--json"], check: false)
            #expect(recipeJSON.status == 65)
            let located = try JSONSerialization.jsonObject(with: Data(recipeJSON.stdout.utf8)) as? [String: Any]
            #expect(located?["exitCode"] as? Int == 65)
            #expect((located?["error"] as? String)?.contains("x.yaml:4:1") == true)
            // 64: the command line is wrong.
            #expect(try KilnBinary.run(["images", "--no-such-flag"], check: false).status == 64)
            // 2: the command could not do its work (here: no store); with --json the error is JSON on stdout too.
            let missing = try KilnBinary.run(["inspect", "x:1", "--json", "--store", store], check: false)
            #expect(missing.status == 2)
            struct Failure: Decodable {
                var schemaVersion: Int
                var error: String
                var exitCode: Int32
            }
            let failure = try JSONDecoder().decode(Failure.self, from: Data(missing.stdout.utf8))
            #expect(missing.stdout.range(of: #"^\{\s*"schemaVersion"\s*:\s*1\s*,"#, options: .regularExpression) != nil)
            #expect(failure.schemaVersion == 1 && failure.exitCode == 2 && failure.error.contains("no image store"))
        }
    }

    /// README's exit-code table, one row at a time (1 for `build --locked` is in LockedBuildTests, for
    /// `rollback` in ReleaseTests; 2 for no store in `readOnlyCommandsNeverCreateAStore`).
    @Test func exitCodeTableRowByRow() async throws {
        try await withTemporaryDirectory("kiln-exit-rows") { tmp in
            let store = tmp.path + "/images"
            try Shell.run(["cp", "-R", KilnBinary.packageRoot + "/Tests/Fixtures/golden", tmp.path + "/recipes"])
            func kiln(_ arguments: [String]) throws -> CommandResult {
                try KilnBinary.run(arguments + ["--store", store], directory: tmp.path, check: false)
            }
            func envelope(_ result: CommandResult) -> (error: String, exitCode: Int)? {
                guard let object = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
                    object["schemaVersion"] as? Int == 1, let error = object["error"] as? String,
                    let code = object["exitCode"] as? Int
                else { return nil }
                return (error, code)
            }
            // 0: done.
            #expect(try kiln(["build", "recipes"]).status == 0)
            #expect(try kiln(["images"]).status == 0)
            // 2: an unknown image, for untag as for inspect; with --json the envelope says 2.
            for arguments in [["untag", "golden-app:9"], ["inspect", "golden-app:9"]] {
                let result = try kiln(arguments)
                #expect(result.status == 2, "\(arguments): \(result.stderr)")
                #expect(result.stderr.contains("no image tagged 'golden-app:9'"), "\(arguments): \(result.stderr)")
                #expect(envelope(try kiln(arguments + ["--json"]))?.exitCode == 2, "\(arguments)")
            }
            #expect(try KilnBinary.imageDigests(store).count == 3, "untag removed nothing")
            // 64: the command line is wrong; with --json, the usage error is the JSON envelope too.
            for arguments in [["images", "--no-such-flag"], ["build", "recipes", "no-such-image"], ["untag"]] {
                let result = try kiln(arguments)
                #expect(result.status == 64, "\(arguments): \(result.stderr)")
                #expect(result.stderr.contains("Error: "), "\(arguments): \(result.stderr)")
                let json = try kiln(arguments + ["--json"])
                #expect(json.status == 64, "\(arguments)")
                #expect(envelope(json)?.exitCode == 64, "\(arguments): \(json.stdout)")
            }
            // 65: a bad recipe, found by --dry-run as by the build, before any network: a base port out of range.
            try tmp.write(
                "bad/x.yaml",
                "name: x\nversion: '1'\nbase: registry.invalid:99999/x:1@sha256:\(String(repeating: "a", count: 64))\n")
            for arguments in [["build", "bad", "--dry-run"], ["build", "bad", "--offline"]] {
                let result = try kiln(arguments)
                #expect(result.status == 65, "\(arguments): \(result.stderr)")
                #expect(result.stderr.contains("x.yaml:3:"), "\(arguments): \(result.stderr)")
                #expect(result.stderr.contains("99999"), "\(arguments): \(result.stderr)")
            }
            // 66: an input that is not at hand (offline, not in the cache).
            try tmp.write(
                "remote/y.yaml",
                """
                name: y
                version: "1"
                layers:
                  - name: l
                    add:
                      - {url: "http://127.0.0.1:9/y.bin", sha256: "\(String(repeating: "b", count: 64))", to: /y}
                """)
            let missing = try KilnBinary.run(
                ["build", "remote", "--offline", "--store", store, "--cache-dir", tmp.path + "/cache"],
                directory: tmp.path, check: false)
            #expect(missing.status == 66, "\(missing.stderr)")
        }
    }

    /// The waits of export, copy and verify's rebuild say what they do in a pipe (where no live line is drawn):
    /// a line as each starts, before its result.
    @Test func longWaitsPrintTheirStepsInAPipe() async throws {
        try await withRegistry(directory: "kiln-steps") { registry, tmp in
            try Shell.run(["cp", "-R", KilnBinary.packageRoot + "/Tests/Fixtures/golden", tmp.path + "/recipes"])
            let store = ["--store", tmp.path + "/images"]
            @discardableResult func kiln(_ arguments: [String]) throws -> CommandResult {
                try KilnBinary.run(arguments, environment: ["SOURCE_DATE_EPOCH": ""], directory: tmp.path)
            }
            try kiln(["build", "recipes"] + store)
            let export = try kiln(["export", "golden-app:2.0.0", "-o", tmp.path + "/app.tar"] + store)
            let exporting = try #require(export.stderr.range(of: "exporting golden-app:2.0.0: "), "\(export.stderr)")
            #expect(exporting.lowerBound < (export.stderr.range(of: "wrote ")?.lowerBound ?? exporting.lowerBound))
            let app = "\(registry.address)/ns/golden-app"
            try kiln(["push", "--to", "\(registry.address)/ns"] + store)
            let copy = try kiln(["copy", app + ":2.0.0", "\(registry.address)/prod/golden-app"])
            #expect(
                copy.stderr.contains("copying \(app):2.0.0 → \(registry.address)/prod/golden-app"), "\(copy.stderr)")
            let verify = try kiln(["verify", app + ":2.0.0", "--recipes", "recipes"])
            #expect(verify.stderr.contains("verify: rebuilding ns/golden-app"), "\(verify.stderr)")
            #expect(verify.stderr.contains("golden-app ▸ config: built"), "\(verify.stderr)")
        }
    }

    /// Every subcommand's long option names, from ArgumentParser's own description of the command line.
    func longOptions() throws -> [String: Set<String>] {
        let dump = try KilnBinary.run(["--experimental-dump-help"]).stdout
        let tool = try #require(try JSONSerialization.jsonObject(with: Data(dump.utf8)) as? [String: Any])
        let root = try #require(tool["command"] as? [String: Any])
        let subcommands = try #require(root["subcommands"] as? [[String: Any]])
        var result: [String: Set<String>] = [:]
        for command in subcommands {
            guard let name = command["commandName"] as? String else { continue }
            let names = (command["arguments"] as? [[String: Any]] ?? []).flatMap { argument in
                (argument["names"] as? [[String: Any]] ?? []).filter { $0["kind"] as? String == "long" }
                    .compactMap { $0["name"] as? String }
            }
            result[name] = Set(names)
        }
        return result
    }

    /// Every command that may touch the network takes `--verbose` and `--debug` (one shared option group), and
    /// `push --verbose` / `pull --verbose` parse: they fail for what they found (no store, nothing listening),
    /// never as a usage error.
    @Test func everyNetworkedCommandTakesVerboseAndDebug() async throws {
        let options = try longOptions()
        let networked = [
            "push", "pull", "copy", "tag", "ls", "digest", "manifest", "login", "release", "rollback", "verify",
            "build", "lock", "deploy-refs", "diff",
        ]
        for command in networked {
            #expect(
                options[command]?.isSuperset(of: ["verbose", "debug"]) == true, "\(command): \(options[command] ?? [])")
        }
        // Any command with registry flags has them (a command added later is covered without being listed).
        for (command, names) in options where names.contains("insecure") {
            #expect(names.isSuperset(of: ["verbose", "debug"]), "\(command)")
        }
        for command in ["push", "pull"] {
            let help = try KilnBinary.run([command, "--help"], check: false)
            #expect(help.status == 0, "\(command) --help: \(help.stderr)")
            #expect(help.stdout.contains("--verbose") && help.stdout.contains("--debug"), "\(help.stdout)")
        }
        try await withTemporaryDirectory("kiln-verbose") { tmp in
            let closed = try freePort()
            for flag in ["--verbose", "--debug"] {
                let push = try KilnBinary.run(
                    ["push", flag, "--to", "127.0.0.1:\(closed)/ns", "--store", tmp.path + "/none"], check: false)
                #expect(push.status == 2, "push \(flag): \(push.stderr)")
                #expect(push.stderr.contains("no image store"), "push \(flag): \(push.stderr)")
                let pull = try KilnBinary.run(
                    ["pull", flag, "127.0.0.1:\(closed)/ns/app:1", "--store", tmp.path + "/pulled"], check: false)
                #expect(pull.status == 2, "pull \(flag): \(pull.stderr)")
                #expect(pull.stderr.contains("refused"), "pull \(flag): \(pull.stderr)")
            }
        }
    }

    /// A release VERSION names a file (`releases/VERSION.json`): one that is not an OCI tag is a usage error
    /// (64) before anything is opened, so `../secret` never reads a document outside the releases directory.
    @Test func releaseVersionsThatAreNotTagsAreUsageErrors() async throws {
        try await withTemporaryDirectory("kiln-version") { tmp in
            try FileManager.default.createDirectory(atPath: tmp.path + "/releases", withIntermediateDirectories: true)
            // Something a traversal would reach; not even valid, so any read of it would fail differently.
            try "{".write(toFile: tmp.path + "/secret.json", atomically: true, encoding: .utf8)
            for version in [
                "../secret", "../../../etc/passwd", "a/b", ".hidden", "caf\u{E9}", String(repeating: "a", count: 129),
                "",
            ] {
                for command in [["rollback", version], ["deploy-refs", version], ["diff", "1.0", version]] {
                    let result = try KilnBinary.run(
                        command + ["--releases", tmp.path + "/releases"], directory: tmp.path, check: false)
                    #expect(result.status == 64, "\(command): \(result.status) \(result.stderr)")
                    #expect(result.stderr.contains("is not a valid release version"), "\(command): \(result.stderr)")
                    #expect(!result.stderr.contains("secret.json"), "\(command): \(result.stderr)")
                }
            }
            // A valid tag that names no release still gets past validation (and fails as unknown, exit 2).
            let unknown = try KilnBinary.run(["rollback", "1.0", "--releases", tmp.path + "/releases"], check: false)
            #expect(unknown.status == 2, "\(unknown.stderr)")
        }
    }

    /// The subcommands whose options include `--json`, from ArgumentParser's own description of the command
    /// line: a command added later is found without anyone listing it here.
    func commandsTakingJSON() throws -> Set<String> {
        let dump = try KilnBinary.run(["--experimental-dump-help"]).stdout
        let tool = try #require(try JSONSerialization.jsonObject(with: Data(dump.utf8)) as? [String: Any])
        let root = try #require(tool["command"] as? [String: Any])
        let subcommands = try #require(root["subcommands"] as? [[String: Any]])
        return Set(
            subcommands.filter { command in
                (command["arguments"] as? [[String: Any]] ?? []).contains { argument in
                    (argument["names"] as? [[String: Any]] ?? []).contains {
                        $0["kind"] as? String == "long" && $0["name"] as? String == "json"
                    }
                }
            }.compactMap { $0["commandName"] as? String })
    }

    /// Every command that takes `--json`, run for real (a store, a registry, a release): each prints one object
    /// whose first member is `"schemaVersion": 1`, with the member that carries its result.
    @Test func everyJSONDocumentStartsWithTheSchemaVersion() async throws {
        let taking = try commandsTakingJSON()
        #expect(taking.isSuperset(of: ["build", "images", "push", "verify"]), "the dump was read: \(taking)")

        try await withRegistry(directory: "kiln-json") { registry, tmp in
            try Shell.run(["cp", "-R", KilnBinary.packageRoot + "/Tests/Fixtures/golden", tmp.path + "/recipes"])
            let store = tmp.path + "/images"
            let app = "\(registry.address)/ns/golden-app"
            // A key pair for `sign` and `verify --key` (`key generate` is a subcommand of `key`, checked in KilnSignTests).
            try KilnBinary.run(["key", "generate", tmp.path + "/k"], environment: ["KILN_KEY_PASSWORD": "pw"])
            // In order, as each needs what the ones before made; the member shows the document is the command's own
            // (and keeps the names of one vocabulary: `images` lists, `size`, `imageCount`, `publishedDigest`).
            let runs: [(arguments: [String], member: String)] = [
                (["build", "recipes", "--version", "1.0.0", "--store", store], "images"),
                (["build", "recipes", "--dry-run", "--store", store], "inputs"),
                (["images", "--store", store], "images"),
                (["inspect", "golden-app:1.0.0", "--store", store], "images"),
                (["fsck", "--store", store], "blobsChecked"),
                (["push", "--to", "\(registry.address)/ns", "--store", store], "images"),
                (["ls", app], "registry"),
                (["digest", app + ":1.0.0"], "size"),
                (["manifest", app + ":1.0.0"], "manifest"),
                (["copy", app + ":1.0.0", "\(registry.address)/prod/golden-app"], "blobsWritten"),
                (["tag", app + ":1.0.0", "candidate"], "reference"),
                (["release", "1.0.0", "--to", "\(registry.address)/ns", "--store", store], "release"),
                (["releases"], "releases"),
                (["diff", "1.0.0", "1.0.0", "--store", store], "images"),
                (["rollback", "1.0.0", "--dry-run"], "moves"),
                (["verify", app + ":1.0.0", "--recipes", "recipes"], "publishedDigest"),
                (["sign", app + ":1.0.0", "--key", tmp.path + "/k.key"], "signatures"),
                (["verify", app + ":1.0.0", "--key", tmp.path + "/k.pub", "--signatures-only"], "verified"),
                (["sign", "\(registry.address)/ns/golden-base:1.0.0", "--key", tmp.path + "/k.key"], "signatures"),
                (
                    [
                        "promote", "1.0.0", "--from", "\(registry.address)/ns", "--to", "\(registry.address)/prod",
                        "--key",
                        tmp.path + "/k.pub",
                    ],
                    "verified"
                ),
                (["pull", app + ":1.0.0", "--store", tmp.path + "/pulled"], "publishedDigest"),
                (["untag", "golden-app:stable", "--store", store], "untagged"),
                (["gc", "--dry-run", "--store", store], "size"),
                (["catalog", registry.address], "repositories"),
                (["delete", "\(registry.address)/prod/golden-app:1.0.0"], "digest"),
                (["export", "golden-app:1.0.0", "-o", tmp.path + "/app.tar", "--store", store], "size"),
                (["lock", "recipes", "--store", store], "images"),
                (["deploy-refs", "1.0.0"], "references"),
                (["login", registry.address, "-u", "ci", "-p", "secret"], "saved"),
                (["logout", registry.address], "removed"),
            ]
            for (arguments, member) in runs {
                // Credentials go to the test's own auth file, never the machine's.
                let out = try KilnBinary.run(
                    arguments + ["--json"],
                    environment: [
                        "SOURCE_DATE_EPOCH": "", "REGISTRY_AUTH_FILE": tmp.path + "/auth.json",
                        "KILN_KEY_PASSWORD": "pw",
                    ],
                    directory: tmp.path
                ).stdout
                #expect(
                    out.range(of: #"^\{\s*"schemaVersion"\s*:\s*1\s*,"#, options: .regularExpression) != nil,
                    "\(arguments[0]): \(out.prefix(120))")
                let document = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
                #expect(document?["schemaVersion"] as? Int == 1, "\(arguments[0])")
                #expect(document?[member] != nil, "\(arguments[0]) prints no '\(member)': \(out.prefix(300))")
            }
            #expect(Set(runs.map { $0.arguments[0] }) == taking, "run every command that takes --json above")
        }
    }
}
