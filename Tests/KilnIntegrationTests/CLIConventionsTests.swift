import Foundation
import KilnTestSupport
import Testing

/// What operators expect of any CLI: a version, read-only commands that never write, one JSON envelope.
@Suite struct CLIConventionsTests {
    @Test func versionNamesKilnAndTheEncoding() throws {
        let out = try KilnBinary.run(["--version"]).stdout
        #expect(out.range(of: #"^kiln \d+\.\d+\.\d+ \(encoding \d+\)\n$"#, options: .regularExpression) != nil)
    }

    @Test func readOnlyCommandsNeverCreateAStore() throws {
        let tmp = try TemporaryDirectory("kiln-readonly")
        defer { tmp.remove() }
        let store = tmp.path + "/images"
        let list = try KilnBinary.run(["images", "--store", store])
        #expect(list.stdout.contains("no images in \(store) yet"))
        #expect(try KilnBinary.imageDigests(store).isEmpty)
        for arguments in [
            ["inspect", "komodod:1"], ["export", "komodod:1", "-o", tmp.path + "/out.tar"], ["gc", "--dry-run"],
            ["fsck"], ["untag", "komodod:1"],
        ] {
            let result = try KilnBinary.run(arguments + ["--store", store], check: false)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.contains("no image store at \(store)"), "\(arguments): \(result.stderr)")
        }
        // Nothing was written: neither the store nor anything beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == [])
    }

    @Test func exitCodesAreTheDocumentedOnes() throws {
        let tmp = try TemporaryDirectory("kiln-exit")
        defer { tmp.remove() }
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
    @Test func everyNetworkedCommandTakesVerboseAndDebug() throws {
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
        let tmp = try TemporaryDirectory("kiln-verbose")
        defer { tmp.remove() }
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

    /// A release VERSION names a file (`releases/VERSION.json`): one that is not an OCI tag is a usage error
    /// (64) before anything is opened, so `../secret` never reads a document outside the releases directory.
    @Test func releaseVersionsThatAreNotTagsAreUsageErrors() throws {
        let tmp = try TemporaryDirectory("kiln-version")
        defer { tmp.remove() }
        try FileManager.default.createDirectory(atPath: tmp.path + "/releases", withIntermediateDirectories: true)
        // Something a traversal would reach; not even valid, so any read of it would fail differently.
        try "{".write(toFile: tmp.path + "/secret.json", atomically: true, encoding: .utf8)
        for version in [
            "../secret", "../../../etc/passwd", "a/b", ".hidden", "caf\u{E9}", String(repeating: "a", count: 129), "",
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
    @Test func everyJSONDocumentStartsWithTheSchemaVersion() throws {
        let taking = try commandsTakingJSON()
        #expect(taking.isSuperset(of: ["build", "images", "push", "verify"]), "the dump was read: \(taking)")

        let registry = try RegistryServer()
        let tmp = try TemporaryDirectory("kiln-json")
        defer {
            registry.stop()
            tmp.remove()
        }
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
            (["verify", app + ":1.0.0", "--key", tmp.path + "/k.pub"], "verified"),
            (["sign", "\(registry.address)/ns/golden-base:1.0.0", "--key", tmp.path + "/k.key"], "signatures"),
            (
                [
                    "promote", "1.0.0", "--from", "\(registry.address)/ns", "--to", "\(registry.address)/prod", "--key",
                    tmp.path + "/k.pub",
                ],
                "verified"
            ),
            (["pull", app + ":1.0.0", "--store", tmp.path + "/pulled"], "publishedDigest"),
            (["untag", "golden-app:stable", "--store", store], "untagged"),
            (["gc", "--dry-run", "--store", store], "size"),
        ]
        for (arguments, member) in runs {
            let out = try KilnBinary.run(
                arguments + ["--json"], environment: ["SOURCE_DATE_EPOCH": "", "KILN_KEY_PASSWORD": "pw"],
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
