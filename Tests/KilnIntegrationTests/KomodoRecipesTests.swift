import Foundation
import KilnTestSupport
import Testing

/// The checked-in Komodo recipes (recipes/), built with stand-in inputs served from 127.0.0.1 and the runtime
/// base resolved from the host's Debian mirror; and, without any network, planned as they are.
@Suite(.serialized) struct KomodoRecipesTests {
    static let recipes = KilnBinary.packageRoot + "/recipes"
    static let environment = ["SOURCE_DATE_EPOCH": "", "TZ": "UTC"]

    /// A copy of recipes/ whose url inputs point at a local server holding generated stand-ins.
    final class Fixture {
        let tmp: TemporaryDirectory
        let server: StaticFileServer
        let recipes: String
        let store: String
        let cache: String
        var standIns: [String: String] = [:]

        init() throws {
            tmp = try TemporaryDirectory("kiln-komodo")
            let files = tmp.path + "/www"
            recipes = tmp.path + "/recipes"
            store = tmp.path + "/images"
            cache = tmp.path + "/cache"
            try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
            try Shell.run(["cp", "-r", KomodoRecipesTests.recipes, recipes])
            try? FileManager.default.removeItem(atPath: recipes + "/kiln.lock")
            // STAND-INS (demo/komodod-standin.cpp): a program that links what komodod links (libstdc++, libgomp)
            // and serves and calls authenticated RPC on 127.0.0.1 the way komodod, komodo-cli and iguana do.
            let zip = tmp.path + "/zip"
            try FileManager.default.createDirectory(atPath: zip, withIntermediateDirectories: true)
            let standIn = zip + "/komodod"
            try Shell.run([
                "g++", "-fopenmp", "-O1", "-o", standIn, KilnBinary.packageRoot + "/demo/komodod-standin.cpp",
            ])
            try Shell.run(["cp", standIn, zip + "/komodo-cli"])
            try Shell.run(["tar", "-C", zip, "-czf", files + "/komodo-0.9.2-2-linux.tar.gz", "komodod", "komodo-cli"])
            for (archive, top, programs) in [
                ("bitcoin-31.1-x86_64-linux-gnu.tar.gz", "bitcoin-31.1", ["bitcoind", "bitcoin-cli"]),
                ("litecoin-0.21.4-x86_64-linux-gnu.tar.gz", "litecoin-0.21.4", ["litecoind", "litecoin-cli"]),
            ] {
                let bin = tmp.path + "/third/" + top + "/bin"
                try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
                for program in programs { try Shell.run(["cp", standIn, bin + "/" + program]) }
                try Shell.run(["tar", "-C", tmp.path + "/third", "-czf", files + "/" + archive, top])
            }
            for name in ["sprout-groth16.params", "sapling-spend.params", "sapling-output.params"] {
                try Shell.run(["sh", "-c", "head -c 300000 /dev/urandom > '\(files)/\(name)'"])
            }
            server = try StaticFileServer(root: files, log: tmp.path + "/http.log")
            // Point every url at the stand-ins and every pinned sha256 at theirs.
            for file in try FileManager.default.contentsOfDirectory(atPath: files) {
                standIns[file] = try Shell.run(["sha256sum", files + "/" + file]).stdout.prefix(64).description
            }
            for recipe in ["komodod.yaml", "bitcoind.yaml", "litecoind.yaml"] {
                var text = try String(contentsOfFile: recipes + "/" + recipe, encoding: .utf8)
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                var out: [String] = []
                var lastFile: String?
                for line in lines {
                    if let range = line.range(of: "url: ") {
                        let url = String(line[range.upperBound...])
                        lastFile = (url as NSString).lastPathComponent
                        out.append(line[..<range.upperBound] + "\(server.url)/\(lastFile!)")
                    } else if let range = line.range(of: "sha256: "), let file = lastFile {
                        out.append(line[..<range.upperBound] + standIns[file]!)
                    } else {
                        out.append(line)
                    }
                }
                text = out.joined(separator: "\n")
                try text.write(toFile: recipes + "/" + recipe, atomically: true, encoding: .utf8)
            }
        }

        @discardableResult func kiln(_ arguments: [String], check: Bool = true) throws -> CommandResult {
            let store = ["--store", self.store]
            // iguana is compiled from the real dPoW archive (issue 15).
            let sources =
                ["build", "lock"].contains(arguments.first)
                ? (try? TestSources.directory()).map { ["--sources", $0] } ?? [] : []
            return try KilnBinary.run(
                arguments + store + sources + ["--cache-dir", cache], environment: KomodoRecipesTests.environment,
                check: check)
        }

        func json(_ path: String) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        }

        /// The manifest and config of a tagged image, read straight from the layout.
        func image(_ reference: String) throws -> (manifest: [String: Any], config: [String: Any]) {
            let index = try json(store + "/index.json")
            let entry = (index["manifests"] as! [[String: Any]]).first {
                ($0["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"] == reference
            }!
            let blob = { (digest: String) in self.store + "/blobs/sha256/" + digest.dropFirst(7) }
            let manifest = try json(blob(entry["digest"] as! String))
            let config = try json(blob((manifest["config"] as! [String: Any])["digest"] as! String))
            return (manifest, config)
        }

        func layers(_ reference: String) throws -> [String] {
            try (image(reference).manifest["layers"] as! [[String: Any]]).map { $0["digest"] as! String }
        }

        deinit {
            server.stop()
            tmp.remove()
        }
    }

    static let komodo = "komodo-0.9.2-2-linux.tar.gz"
    static let version = "0.9.2-2"

    @Test(.enabled(if: TestSources.runnable, Comment(rawValue: TestSources.skipReason)))
    func buildsEveryImageWithSharedKomododLayers() throws {
        let f = try Fixture()
        // komodod's archive is pinned by the first `kiln lock`, loudly (its checksum is in release notes only).
        let lock = try f.kiln(["lock", f.recipes])
        #expect(lock.stderr.contains("TRUSTED WITHOUT A PUBLISHED CHECKSUM"))
        let locked = try f.json(f.recipes + "/kiln.lock")["inputs"] as! [String: String]
        #expect(locked["\(f.server.url)/\(Self.komodo)"] == "sha256:" + f.standIns[Self.komodo]!)

        try f.kiln(["build", f.recipes])
        let komodod = try f.layers("komodod:\(Self.version)")
        // komodo-daemon's 10 chains; its GLEEC is the old chain, which komodod starts only with a datadir.
        let names = ["ccl", "clc", "doc", "gleec_old", "iln", "koin", "marty", "ninja", "pirate", "supernet"]
        for name in names {
            // No layer of its own: exactly komodod's layers, shared by digest; versioned as komodod.
            #expect(try f.layers("\(name):\(Self.version)") == komodod, "\(name)")
        }
        // The chain's arguments, a list repeating its flag, and komodod's derived ports.
        let pirate = try f.image("pirate:\(Self.version)").config["config"] as! [String: Any]
        let cmd = pirate["Cmd"] as! [String]
        #expect(
            Array(cmd.prefix(6)) == [
                "-printtoconsole", "-ac_name=PIRATE", "-ac_halving=77777", "-ac_private=1", "-ac_reward=25600000000",
                "-ac_supply=0",
            ])
        #expect(cmd.filter { $0.hasPrefix("-addnode=") }.count == 8)
        #expect((pirate["ExposedPorts"] as? [String: Any])?.keys.sorted() == ["45452/tcp", "45453/tcp"])
        #expect(pirate["User"] as? String == "3003")
        #expect((pirate["Env"] as? [String])?.contains("KOMODO_RPC_PORT=45453") == true)
        #expect((pirate["Env"] as? [String])?.contains("HOME=/home/komodo") == true)
        #expect((pirate["Volumes"] as? [String: Any])?.keys.sorted() == ["/home/komodo/.komodo"])
        let labels = pirate["Labels"] as? [String: String]
        #expect(labels?["io.komodo.assetchain.name"] == "PIRATE")
        #expect(labels?["io.komodo.p2p-port"] == "45452" && labels?["io.komodo.rpc-port"] == "45453")
        let gleec = try f.image("gleec_old:\(Self.version)").config["config"] as! [String: Any]
        #expect((gleec["Cmd"] as! [String]).contains("-datadir=/home/komodo/.komodo/GLEEC_OLD"))
        #expect((gleec["Labels"] as? [String: String])?["io.komodo.datadir"] == "/home/komodo/.komodo/GLEEC_OLD")
        let komododConfig = try f.image("komodod:\(Self.version)").config["config"] as! [String: Any]
        #expect((komododConfig["ExposedPorts"] as? [String: Any])?.keys.sorted() == ["7770/tcp", "7771/tcp"])
        #expect(komododConfig["StopSignal"] as? String == "SIGINT")
        #expect(komododConfig["Entrypoint"] as? [String] == ["/usr/local/bin/komodo-start"])
        for image in ["bitcoind:31.1", "litecoind:0.21.4"] {
            #expect(try f.layers(image).first == komodod.first, "\(image) shares the runtime base")
        }

        let podman = try Podman()
        defer { podman.cleanUp() }
        // The start script runs (busybox-static) and execs the stand-in komodod: the base carries glibc,
        // libstdc++ and libgomp.
        let out = try podman.run("oci:\(f.store):komodod:\(Self.version)", ["-printtoconsole"]).stdout
        #expect(out.contains("STAND-IN komodod (openmp ok) -printtoconsole"))
        // Upstream builds komodod on Ubuntu 22.04 (glibc 2.35; g++ 11: GLIBCXX up to 3.4.29): the runtime base
        // must provide those symbol versions.
        for (library, version) in [
            ("/lib/x86_64-linux-gnu/libc.so.6", "GLIBC_2.35"),
            ("/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "GLIBCXX_3.4.29"),
        ] {
            let found = try podman.run(
                "oci:\(f.store):komodod:\(Self.version)", ["grep", "-c", version, library],
                extra: ["--entrypoint", "/bin/busybox"], check: false)
            #expect(found.succeeded, "\(library) lacks \(version)")
        }
        try checkRuntime(f, podman)

        // The lock now records every image; --locked rebuilds to the same digests and downloads nothing.
        let requests = f.server.requests.count
        let again = try f.kiln(["build", f.recipes, "--locked"])
        #expect(again.succeeded)
        #expect(f.server.requests.count == requests)
        let images = try f.json(f.recipes + "/kiln.lock")["images"] as! [String: String]
        // One digest per image, keyed by name: the version is no input to a digest.
        #expect(images["komodod"] != nil && images["doc"] != nil)
    }

    /// komodod and a chain with their confs written from the RPC secret, sharing one network namespace (as the
    /// node deployment runs them): komodo-cli answers on 127.0.0.1 and the chain, without KMD's data volume,
    /// reaches KMD's RPC with the KMD conf it wrote from the secret; a fresh volume works for the image's uid and
    /// for an arbitrary uid in group 0.
    func checkRuntime(_ f: Fixture, _ podman: Podman) throws {
        let secrets = f.tmp.path + "/secrets"
        try FileManager.default.createDirectory(atPath: secrets, withIntermediateDirectories: true)
        try "operator\n".write(toFile: secrets + "/komodo-rpcuser", atomically: true, encoding: .utf8)
        try "s3cret".write(toFile: secrets + "/komodo-rpcpassword", atomically: true, encoding: .utf8)
        let mount = ["-v", secrets + ":/run/secrets:ro"]
        defer { _ = try? podman.podman(["rm", "-f", "-t", "0", "kmd", "doc"], check: false) }
        _ = try podman.podman(
            ["run", "-d", "--name", "kmd", "--network=none", "-v", "kmd-data:/home/komodo/.komodo"] + mount
                + ["oci:\(f.store):komodod:\(Self.version)"])
        _ = try podman.podman(
            [
                "run", "-d", "--name", "doc", "--network=container:kmd", "--user", "123456:0",
                "-v", "doc-data:/home/komodo/.komodo/DOC",
            ] + mount
                + ["oci:\(f.store):doc:\(Self.version)"])
        var kmd = try podman.podman(["exec", "kmd", "komodo-cli", "getconnectioncount"], check: false)
        var doc = kmd
        for _ in 0..<40 {
            kmd = try podman.podman(["exec", "kmd", "komodo-cli", "getconnectioncount"], check: false)
            doc = try podman.podman(["exec", "doc", "komodo-cli", "-ac_name=DOC", "getconnectioncount"], check: false)
            if kmd.succeeded && doc.stdout.contains("\"result\":1") { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        #expect(kmd.stdout.contains("\"result\":0"), Comment(rawValue: kmd.stderr))
        // The chain (arbitrary uid 123456, group 0) wrote its conf into a fresh volume and reached KMD.
        #expect(doc.stdout.contains("\"result\":1"), Comment(rawValue: doc.stderr))
        let conf = try podman.podman(["exec", "doc", "/bin/busybox", "cat", "/home/komodo/.komodo/DOC/DOC.conf"]).stdout
        #expect(conf.contains("rpcuser=operator\nrpcpassword=s3cret\nrpcport=62416\nrpcbind=127.0.0.1\n"))
        let logs = try podman.podman(["logs", "doc"]).stdout
        #expect(logs.contains("reached KMD's RPC at 127.0.0.1:7771"))
        // litecoind (here the stand-in) is configured like komodod: coin-start writes its conf from its own
        // secret, RPC on 127.0.0.1, then execs it.
        try "lrpc".write(toFile: secrets + "/litecoind-rpcuser", atomically: true, encoding: .utf8)
        try "lpass".write(toFile: secrets + "/litecoind-rpcpassword", atomically: true, encoding: .utf8)
        let litecoind = try podman.run(
            "oci:\(f.store):litecoind:0.21.4",
            extra: mount + ["--user", "123456:0", "-v", "ltc-data:/home/litecoin/.litecoin"])
        let ltcOutput = litecoind.stdout + litecoind.stderr
        #expect(
            ltcOutput.contains("coin-start: wrote /home/litecoin/.litecoin/litecoin.conf (rpcuser lrpc"), "\(ltcOutput)"
        )
        #expect(ltcOutput.contains("-printtoconsole -rpcbind=127.0.0.1 -rpcallowip=127.0.0.1"), "\(ltcOutput)")
        let ltcConf = try podman.run(
            "oci:\(f.store):litecoind:0.21.4", ["cat", "/home/litecoin/.litecoin/litecoin.conf"],
            extra: ["--entrypoint", "/bin/busybox", "-v", "ltc-data:/home/litecoin/.litecoin"]
        ).stdout
        #expect(
            ltcConf
                == "rpcuser=lrpc\nrpcpassword=lpass\nrpcport=9332\nrpcbind=127.0.0.1\nrpcallowip=127.0.0.1\nserver=1\n")
        // komodod receives the stop signal itself (the script execs it) and stops cleanly.
        _ = try podman.podman(["stop", "-t", "20", "kmd"])
        #expect(try podman.podman(["logs", "kmd"]).stdout.contains("STAND-IN komodod KMD: flushed, stopped"))
    }

    @Test func badInputsAreReportedAtTheRecipeLine() throws {
        let f = try Fixture()
        let komodod = f.recipes + "/komodod.yaml"
        var text = try String(contentsOfFile: komodod, encoding: .utf8)
        let good = f.standIns["sapling-output.params"]!
        let bad = String(repeating: "0", count: 64)
        text = text.replacingOccurrences(of: good, with: bad)
        try text.write(toFile: komodod, atomically: true, encoding: .utf8)
        let line = text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains(bad) }! + 1
        let result = try f.kiln(["build", f.recipes, "komodod", "--tag", "x"], check: false)
        #expect(result.status != 0)
        // The download that does not match names both digests and leaves nothing in the cache.
        #expect(result.stderr.contains("expected sha256:\(bad)"))
        #expect(result.stderr.contains("sha256:\(good)"))
        #expect(result.stderr.contains("komodod.yaml:\(line - 1):"))
        #expect(!FileManager.default.fileExists(atPath: f.cache + "/sha256/" + bad))
        #expect(!FileManager.default.fileExists(atPath: f.cache + "/sha256/" + good))
        #expect(!FileManager.default.fileExists(atPath: f.store + "/index.json"), "nothing was built")
    }

    @Test func missingArchiveMemberNamesTheRecipeLine() throws {
        let f = try Fixture()
        let komodod = f.recipes + "/komodod.yaml"
        var text = try String(contentsOfFile: komodod, encoding: .utf8)
        text = text.replacingOccurrences(
            of: "extract: [komodod, komodo-cli]", with: "extract: [komodod, komodo-wallet]")
        try text.write(toFile: komodod, atomically: true, encoding: .utf8)
        // `kiln lock` pins the inputs, then fails building the image, naming the member.
        let lock = try f.kiln(["lock", f.recipes], check: false)
        #expect(lock.status != 0)
        #expect(lock.stderr.contains("has no member matching 'komodo-wallet'"))
        #expect(lock.stderr.contains("inputs pinned; no image digest recorded"))
        let result = try f.kiln(["build", f.recipes, "komodod"], check: false)
        #expect(result.status != 0)
        #expect(result.stderr.contains("has no member matching 'komodo-wallet'"))
        #expect(result.stderr.contains("komodod.yaml:"))
        #expect(result.stderr.contains("komodo-cli"), "lists what the archive holds")
    }

    @Test func offlineWithoutInputsStopsBeforeBuildingAndListsThem() throws {
        let f = try Fixture()
        let result = try f.kiln(["build", f.recipes, "--offline"], check: false)
        #expect(result.status == 66)
        for name in ["sprout-groth16.params", "sapling-spend.params", "sapling-output.params"] {
            #expect(result.stderr.contains("\(f.server.url)/\(name) is missing"))
        }
        #expect(result.stderr.contains("--sources"))
        #expect(!FileManager.default.fileExists(atPath: f.store + "/index.json"))
        #expect(f.server.requests.isEmpty)
        // Pre-seeded by file name in a sources directory, the same build needs no network for those inputs.
        let sources = f.tmp.path + "/sources"
        try Shell.run(["cp", "-r", f.server.root, sources])
        let seeded = try f.kiln(["lock", f.recipes, "--sources", sources, "--offline"], check: false)
        // komodod's archive is unpinned: offline, there is nothing to trust it from.
        #expect(seeded.status != 0)
        #expect(seeded.stderr.contains(Self.komodo))
        #expect(f.server.requests.isEmpty)
        let params = f.standIns["sprout-groth16.params"]!
        #expect(FileManager.default.fileExists(atPath: f.cache + "/sha256/" + params), "adopted from sources")
    }

    /// The real recipes, no network: they parse, expand (one image per chain) and plan, and every pinned
    /// sha256 has the right form.
    @Test func realRecipesPlanWithoutNetwork() throws {
        let tmp = try TemporaryDirectory("kiln-plan")
        defer { tmp.remove() }
        let out = try KilnBinary.run(
            ["build", Self.recipes, "--dry-run", "--json", "--store", tmp.path + "/images"]
        ).stdout
        let plan = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        let images = (plan["images"] as! [[String: Any]]).map { $0["name"] as! String }
        for name in ["debian-runtime", "iguana-runtime", "komodod", "bitcoind", "litecoind", "iguana", "doc", "marty"] {
            #expect(images.contains(name), "\(name)")
        }
        let inputs = plan["inputs"] as! [[String: Any]]
        #expect(inputs.count == 6)
        for input in inputs {
            if let sha = input["sha256"] as? String {
                #expect(sha.range(of: "^sha256:[0-9a-f]{64}$", options: .regularExpression) != nil)
            } else {
                #expect((input["url"] as! String).hasSuffix(Self.komodo), "only komodod's archive is unpinned")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: tmp.path + "/images/index.json"))
    }

    /// dPoW's own assetchains.json (what notaries ran last: GLEEC twice, a `${HOME}` datadir, THC with eras,
    /// ac_script and ac_ccenable) through the real assetchain recipe: every chain gets the p2p and RPC ports
    /// dPoW publishes in its `iguana/coins/*_7776` files, read from the dPoW source archive.
    @Test(.enabled(if: TestSources.runnable, Comment(rawValue: TestSources.skipReason)))
    func dPoWChainsGetThePortsDPoWPublishes() throws {
        let tmp = try TemporaryDirectory("kiln-dpow")
        defer { tmp.remove() }
        let archive = TestSources.dPoWArchiveName
        try Shell.run([
            "tar", "-C", tmp.path, "-xzf", try TestSources.dPoWArchive(), "--wildcards", "*/iguana/coins/*_7776",
            "*/iguana/assetchains.json",
        ])
        let iguana = tmp.path + "/" + archive.replacingOccurrences(of: ".tar.gz", with: "") + "/iguana"
        try Shell.run(["cp", "-r", Self.recipes, tmp.path + "/recipes"])
        try Shell.run(["cp", iguana + "/assetchains.json", tmp.path + "/recipes/assetchains.json"])
        let out = try KilnBinary.run(
            ["build", tmp.path + "/recipes", "--dry-run", "--json", "--store", tmp.path + "/images"]
        ).stdout
        let plan = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        var ports: [String: [String]] = [:]
        for image in plan["images"] as! [[String: Any]] {
            ports[image["name"] as! String] = image["ports"] as? [String]
        }
        var checked: [String] = []
        for file in try FileManager.default.contentsOfDirectory(atPath: iguana + "/coins") where file.hasSuffix("_7776")
        {
            let text = try String(contentsOfFile: iguana + "/coins/" + file, encoding: .utf8)
                .replacingOccurrences(of: "\\\"", with: "\"")
            func field(_ name: String) -> String? {
                guard let range = text.range(of: "\"\(name)\":\"?([A-Za-z0-9_]+)", options: .regularExpression) else {
                    return nil
                }
                return String(text[range]).split(separator: ":").last.map {
                    $0.replacingOccurrences(of: "\"", with: "")
                }
            }
            guard let coin = field("newcoin"), let p2p = field("p2p"), let rpc = field("rpc") else { continue }
            if coin == "KMD" || coin == "LTC" { continue }
            #expect(ports[coin.lowercased()] == ["\(p2p)/tcp", "\(rpc)/tcp"], "\(file): \(coin)")
            checked.append(coin)
        }
        #expect(
            checked.sorted() == [
                "BCZERO", "CCL", "CLC", "GLEEC", "GLEEC_OLD", "ILN", "KOIN", "MDX", "PIRATE", "RAPH", "THC",
            ])
        // The current komodo-daemon file's chains that dPoW also runs get the same ports.
        let current =
            try JSONSerialization.jsonObject(
                with: Data(
                    KilnBinary.run(["build", Self.recipes, "--dry-run", "--json", "--store", tmp.path + "/images"])
                        .stdout
                        .utf8)) as! [String: Any]
        for image in current["images"] as! [[String: Any]] {
            let name = image["name"] as! String
            if ["ccl", "clc", "gleec_old", "iln", "koin", "pirate"].contains(name) {
                #expect(image["ports"] as? [String] == ports[name], "\(name)")
            }
        }
    }

    /// A `${…}` the matrix cannot resolve is an error, not a literal argument; duplicate chains without a
    /// datadir are refused by name.
    @Test func matrixValuesAreNeverPassedLiterally() throws {
        let tmp = try TemporaryDirectory("kiln-matrix")
        defer { tmp.remove() }
        try tmp.write(
            "recipes/chains.json",
            #"[{"ac_name": "AAA", "ac_supply": "5", "datadir": "${DATA}/AAA"}, {"ac_name": "BBB"}, {"ac_name": "BBB"}]"#
        )
        try tmp.write(
            "recipes/chain.yaml",
            """
            name: "{{chain | lower}}"
            version: "1"
            base: scratch
            matrix: {file: chains.json}
            layers: [{name: a, files: [{path: /a, content: a}]}]
            cmd: ["{{args}}"]
            """)
        let result = try KilnBinary.run(["build", tmp.path + "/recipes", "--dry-run"], check: false)
        #expect(result.status != 0)
        #expect(result.stderr.contains("AAA's datadir uses ${DATA}, which the program would get literally"))
        try tmp.write(
            "recipes/chains.json", #"[{"ac_name": "BBB"}, {"ac_name": "BBB", "datadir": "${HOME}/.komodo/BBB_OLD"}]"#)
        var text = try String(contentsOfFile: tmp.path + "/recipes/chain.yaml", encoding: .utf8)
        text = text.replacingOccurrences(
            of: "matrix: {file: chains.json}", with: "matrix: {file: chains.json, env: {HOME: /h}}")
        try tmp.write("recipes/chain.yaml", text)
        let plan = try KilnBinary.run(["build", tmp.path + "/recipes", "--dry-run"]).stdout
        #expect(plan.contains("bbb:1") && plan.contains("bbb_old:1"))
        try tmp.write("recipes/chains.json", #"[{"ac_name": "BBB"}, {"ac_name": "BBB"}]"#)
        let duplicate = try KilnBinary.run(["build", tmp.path + "/recipes", "--dry-run"], check: false)
        #expect(duplicate.stderr.contains("image name 'bbb' is already used"))
    }

    /// The node as an operator runs it: the images released to a registry, `kiln deploy-refs --format compose`,
    /// and podman-compose bringing that file up as the file says (STAND-IN komodod, two chains, the real
    /// iguana). The services reach each other on 127.0.0.1, the readiness checks pass, and only P2P ports are
    /// published. Stops hold on every path (each daemon's container has StopTimeout 300; iguana stops on
    /// SIGTERM in seconds), iguana cannot write komodod's data, an arbitrary uid in group 0 can write every
    /// volume, the wallet backup lands in the backup volume, and the DEPRECATION_HEIGHT warning shows.
    @Test(.enabled(if: TestSources.runnable, Comment(rawValue: TestSources.skipReason)))
    func nodeComesUpFromTheGeneratedComposeFile() throws {
        let f = try Fixture()
        try f.kiln(["lock", f.recipes])
        try f.kiln(["build", f.recipes, "komodod", "doc", "marty", "iguana", "--tag", "node1"])
        let registry = try RegistryServer()
        defer { registry.stop() }
        let releases = f.tmp.path + "/releases"
        let to = registry.address + "/komodo"
        try KilnBinary.run(["release", "node1", "--to", to, "--releases", releases, "--store", f.store])
        let node = f.tmp.path + "/node"
        try FileManager.default.createDirectory(atPath: node + "/secrets", withIntermediateDirectories: true)
        try KilnBinary.run([
            "deploy-refs", "node1", "--format", "compose", "--releases", releases, "--store", f.store, "--node",
            "node1", "-o", node + "/compose.yaml",
        ])
        let compose = try String(contentsOfFile: node + "/compose.yaml", encoding: .utf8)
        #expect(try Validators.compose(node + "/compose.yaml").succeeded)
        // The bases (tagged node1 too, so released) are not services; RPC ports are nowhere.
        #expect(!compose.contains("debian-runtime") && !compose.contains("iguana-runtime"))
        for rpc in ["7771", "62416", "52593", "7776"] { #expect(!compose.contains("\(rpc):\(rpc)"), "\(rpc)") }
        try "operator".write(toFile: node + "/secrets/komodo-rpcuser", atomically: true, encoding: .utf8)
        try "s3cret".write(toFile: node + "/secrets/komodo-rpcpassword", atomically: true, encoding: .utf8)

        let podman = try Podman()
        defer { podman.cleanUp() }
        // podman-compose names its own network (this conf has no `netns = "none"`) and pulls from the test
        // registry over plain HTTP.
        try podman.directory.write(
            "compose-containers.conf",
            """
            [containers]
            default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
            [engine]
            cgroup_manager = "cgroupfs"
            events_logger = "file"
            runtime = "runc"
            tmp_dir = "\(podman.directory.path)/libpod-tmp"
            """)
        try podman.directory.write(
            "registries.conf", "[[registry]]\nlocation = \"\(registry.address)\"\ninsecure = true\n")
        var environment = podman.environment
        environment["CONTAINERS_CONF"] = podman.directory.path + "/compose-containers.conf"
        environment["CONTAINERS_REGISTRIES_CONF"] = podman.directory.path + "/registries.conf"
        let composeTool = try Validators.bin() + "/podman-compose"
        // Podman networks are host-wide, and a concurrent test's `podman system reset` deletes them: such a
        // start is retried (the compose file is the same). `timeout` keeps a stuck start from hanging the suite.
        var up = CommandResultBox()
        for _ in 0..<3 {
            // As the generated file's header says: podman-compose 1.6.0 does not pass stop_grace_period on.
            up.result = try Shell.run(
                [
                    "timeout", "240", composeTool, "--podman-run-args=--stop-timeout=300", "-f", node + "/compose.yaml",
                    "up", "-d",
                ], environment: environment, directory: node, check: false)
            if up.result?.succeeded == true || up.result?.stderr.contains("network not found") != true { break }
            _ = try? Shell.run(
                [composeTool, "-f", node + "/compose.yaml", "down", "-t", "5"], environment: environment,
                directory: node, check: false)
        }
        defer {
            _ = try? Shell.run(
                [composeTool, "-f", node + "/compose.yaml", "down", "-t", "10"], environment: environment,
                directory: node, check: false)
        }
        #expect(up.result?.succeeded == true, Comment(rawValue: (up.result?.stdout ?? "") + (up.result?.stderr ?? "")))
        func podmanRun(_ arguments: [String]) throws -> CommandResult {
            try Shell.run(["podman"] + arguments, environment: environment, check: false)
        }
        // Each Komodo service's compose health check (komodo-ready: komodo-cli … getblockcount), run on demand.
        var healthy: [String: Bool] = [:]
        for _ in 0..<60 {
            for service in ["komodod", "doc", "marty"] where healthy[service] != true {
                healthy[service] = try podmanRun(["healthcheck", "run", "node1_\(service)_1"]).succeeded
            }
            if healthy.values.allSatisfy({ $0 }) && healthy.count == 3 { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        var why = ""
        for (service, ok) in healthy where !ok {
            let result = try podmanRun(["healthcheck", "run", "node1_\(service)_1"])
            let state = try podmanRun(["inspect", "--format", "{{json .State.Health}}", "node1_\(service)_1"])
            why += "\(service): \(result.stdout) \(result.stderr) \(state.stdout)\n"
        }
        #expect(healthy == ["komodod": true, "doc": true, "marty": true], Comment(rawValue: why))
        // The chains (stand-ins) reach KMD on localhost; iguana (the real one, built from the dPoW source)
        // starts from its working directory with its elected file.
        let expected = [
            "doc": "reached KMD's RPC at 127.0.0.1:7771", "marty": "reached KMD's RPC at 127.0.0.1:7771",
            "iguana": "numnotaries 64, port.13848",
        ]
        var logs: [String: String] = [:]
        for _ in 0..<60 {
            for service in expected.keys {
                let result = try podmanRun(["logs", "node1_\(service)_1"])
                logs[service] = result.stdout + result.stderr
            }
            if expected.allSatisfy({ logs[$0.key]?.contains($0.value) == true }) { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        for (service, text) in expected {
            #expect(logs[service]?.contains(text) == true, "\(service): \(logs[service] ?? "")")
        }
        let published = try podmanRun(["port", "node1_komodod_1"]).stdout
        #expect(published.contains("7770/tcp") && published.contains("62415/tcp") && published.contains("52592/tcp"))
        #expect(!published.contains("7771/tcp") && !published.contains("62416/tcp"))

        // Every daemon's container carries its 300 s itself: a plain `podman stop`, a restart policy or a host
        // shutdown waits as long as podman-compose's own stop.
        for service in ["komodod", "doc", "marty"] {
            let timeout = try podmanRun(["inspect", "--format", "{{.Config.StopTimeout}}", "node1_\(service)_1"]).stdout
            #expect(Int(timeout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 >= 300, "\(service): \(timeout)")
        }
        // iguana has none of the daemons' volumes: a write to komodod's data directory fails; the confs it reads
        // are its own, written from the RPC secret into a tmpfs.
        let mounts = try podmanRun(["inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", "node1_iguana_1"])
        #expect(!mounts.stdout.contains("komodo-data") && !mounts.stdout.contains("doc-data"), "\(mounts.stdout)")
        for path in ["/home/komodo/.komodo/wallet.dat", "/home/komodo/.komodo/x"] {
            let write = try podmanRun(["exec", "node1_iguana_1", "/bin/busybox", "touch", path])
            #expect(!write.succeeded, "iguana wrote \(path)")
        }
        let kmd = try podmanRun(["exec", "node1_komodod_1", "/bin/busybox", "ls", "-a", "/home/komodo/.komodo"])
        #expect(kmd.succeeded && !kmd.stdout.contains("\nx\n"))
        let confs = try podmanRun([
            "exec", "node1_iguana_1", "/bin/busybox", "cat", "/home/iguana/.komodo/komodo.conf",
            "/home/iguana/.komodo/DOC/DOC.conf",
        ])
        #expect(confs.stdout.contains("rpcuser=operator\nrpcpassword=s3cret\nrpcport=7771\n"), "\(confs.stderr)")
        #expect(confs.stdout.contains("rpcport=62416"))
        // An arbitrary uid in group 0 (OpenShift's case) can write every data volume, whoever created it.
        for (service, path) in [
            ("komodod", "/home/komodo/.komodo"), ("komodod", "/home/komodo/backup"),
            ("doc", "/home/komodo/.komodo/DOC"),
            ("marty", "/home/komodo/.komodo/MARTY"), ("iguana", "/home/iguana/.iguana"),
        ] {
            let write = try podmanRun([
                "exec", "--user", "123456:0", "node1_\(service)_1", "/bin/busybox", "touch", path + "/by-123456",
            ])
            #expect(write.succeeded, "\(service) \(path): \(write.stderr)")
        }
        // The wallet backup: komodod copies its wallet into the backup volume (its -exportdir).
        let backup = try podmanRun(["exec", "node1_komodod_1", "komodo-backup"])
        #expect(backup.succeeded && backup.stdout.contains("/home/komodo/backup/KMD"), "\(backup.stderr)")
        let backups = try podmanRun(["exec", "node1_komodod_1", "/bin/busybox", "ls", "/home/komodo/backup"]).stdout
        #expect(backups.contains("KMD20"), "\(backups)")
        // The DEPRECATION_HEIGHT warning, in readiness (here with a window that reaches the stand-in's height)
        // and at start (komodo-start checks the last height komodo-ready kept).
        let ready = try podmanRun([
            "exec", "-e", "KOMODO_DEPRECATION_WARN_BLOCKS=6000000", "node1_komodod_1", "komodo-ready",
        ])
        #expect(ready.succeeded && ready.stderr.contains("before komodod v0.9.2-2's DEPRECATION_HEIGHT 5895951"))
        let start = try podmanRun(["exec", "node1_komodod_1", "komodo-ready", "--deprecation", "5895000"])
        #expect(start.stderr.contains("KMD is at block 5895000, 951 blocks before"))
        let quiet = try podmanRun(["exec", "node1_komodod_1", "komodo-ready", "--deprecation", "4000000"])
        #expect(quiet.succeeded && quiet.stderr.isEmpty)

        // iguana stops on SIGTERM within seconds, although its container also allows 300.
        let began = Date()
        let stopped = try podmanRun(["stop", "node1_iguana_1"])
        let seconds = Date().timeIntervalSince(began)
        #expect(stopped.succeeded && seconds < 10, "iguana took \(seconds) s to stop")
        let exit = try podmanRun(["inspect", "--format", "{{.State.ExitCode}}", "node1_iguana_1"]).stdout
        #expect(exit.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "iguana's exit: \(exit)")
        let iguanaLog = try podmanRun(["logs", "node1_iguana_1"])
        #expect((iguanaLog.stdout + iguanaLog.stderr).contains("iguana stopped on SIGTERM"))
    }
}

/// Holds the last attempt's result (CommandResult has no public initialiser for a placeholder).
struct CommandResultBox { var result: CommandResult? }
