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
            // A dynamically linked program that needs libstdc++ and libgomp, as komodod does.
            let source = try tmp.write(
                "standin.cpp",
                """
                #include <cstdio>
                #include <string>
                #include <omp.h>
                int main(int argc, char **argv) {
                    std::string name = "STAND-IN komodod";
                    int threads = 0;
                    #pragma omp parallel reduction(+:threads)
                    threads += 1;
                    std::printf("%s (openmp %s)", name.c_str(), threads > 0 ? "ok" : "broken");
                    for (int i = 1; i < argc; i++) std::printf(" %s", argv[i]);
                    std::printf("\\n");
                    return 0;
                }
                """)
            try FileManager.default.createDirectory(atPath: tmp.path + "/zip", withIntermediateDirectories: true)
            try Shell.run(["g++", "-fopenmp", "-O1", "-o", tmp.path + "/zip/komodod", source])
            try Shell.run(["cp", tmp.path + "/zip/komodod", tmp.path + "/zip/komodo-cli"])
            try Shell.run([
                "sh", "-c", "cd '\(tmp.path)/zip' && bsdtar -a -cf '\(files)/komodo_linux.zip' komodod komodo-cli",
            ])
            try FileManager.default.createDirectory(
                atPath: tmp.path + "/btc/bitcoin-0.19.0.1/bin", withIntermediateDirectories: true)
            for name in ["bitcoind", "bitcoin-cli"] {
                try Shell.run(["cp", tmp.path + "/zip/komodod", tmp.path + "/btc/bitcoin-0.19.0.1/bin/" + name])
            }
            try Shell.run([
                "tar", "-C", tmp.path + "/btc", "-czf", files + "/bitcoin-0.19.0.1-x86_64-linux-gnu.tar.gz",
                "bitcoin-0.19.0.1",
            ])
            for name in ["sprout-groth16.params", "sapling-spend.params", "sapling-output.params"] {
                try Shell.run(["sh", "-c", "head -c 300000 /dev/urandom > '\(files)/\(name)'"])
            }
            server = try StaticFileServer(root: files, log: tmp.path + "/http.log")
            // Point every url at the stand-ins and every pinned sha256 at theirs.
            for file in try FileManager.default.contentsOfDirectory(atPath: files) {
                standIns[file] = try Shell.run(["sha256sum", files + "/" + file]).stdout.prefix(64).description
            }
            for recipe in ["komodod.yaml", "bitcoind.yaml"] {
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
            // `kiln lock` has no store.
            let store = arguments.first == "lock" ? [] : ["--store", self.store]
            // iguana is compiled from the real dPoW archive (issue 15).
            let sources = arguments.first == "build" ? ["--sources", SourceBuildTests.sources] : []
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

    @Test func buildsEveryImageWithSharedKomododLayers() throws {
        let f = try Fixture()
        // komodod's archive has no published checksum: `kiln lock` pins it, loudly.
        let lock = try f.kiln(["lock", f.recipes])
        #expect(lock.stderr.contains("TRUSTED WITHOUT A PUBLISHED CHECKSUM"))
        let locked = try f.json(f.recipes + "/kiln.lock")["inputs"] as! [String: String]
        #expect(locked["\(f.server.url)/komodo_linux.zip"] == "sha256:" + f.standIns["komodo_linux.zip"]!)

        try f.kiln(["build", f.recipes])
        let komodod = try f.layers("komodod:0.9.0")
        let chains =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: f.recipes + "/assetchains.json"))) as! [[String: Any]]
        #expect(chains.count > 40)
        for chain in chains {
            let name = (chain["ac_name"] as! String).lowercased()
            // No layer of its own: exactly komodod's layers, shared by digest.
            #expect(try f.layers("\(name):0.9.0") == komodod, "\(name)")
        }
        // The chain's arguments, a list repeating its flag, and komodod's derived ports.
        let pirate = try f.image("pirate:0.9.0").config["config"] as! [String: Any]
        #expect(
            pirate["Cmd"] as? [String] == [
                "-printtoconsole", "-ac_name=PIRATE", "-ac_halving=77777", "-ac_private=1",
                "-ac_reward=25600000000", "-ac_supply=0", "-addnode=136.243.102.225",
            ])
        #expect((pirate["ExposedPorts"] as? [String: Any])?.keys.sorted() == ["45452/tcp", "45453/tcp"])
        #expect(pirate["User"] as? String == "komodo")
        #expect((pirate["Volumes"] as? [String: Any])?.keys.sorted() == ["/home/komodo/.komodo"])
        #expect((pirate["Labels"] as? [String: String])?["io.komodo.assetchain.name"] == "PIRATE")
        let our = try f.image("our:0.9.0").config["config"] as! [String: Any]
        #expect((our["Cmd"] as! [String]).filter { $0.hasPrefix("-addnode=") }.count == 3)
        let komododConfig = try f.image("komodod:0.9.0").config["config"] as! [String: Any]
        #expect((komododConfig["ExposedPorts"] as? [String: Any])?.keys.sorted() == ["7770/tcp", "7771/tcp"])
        #expect(komododConfig["StopSignal"] as? String == "SIGINT")
        #expect(try f.layers("bitcoind:0.19.0.1").first == komodod.first, "bitcoind shares the runtime base")

        // The stand-in komodod runs in its image: the base carries glibc, libstdc++ and libgomp.
        let podman = try Podman()
        defer { podman.cleanUp() }
        let out = try podman.run("oci:\(f.store):komodod:0.9.0", ["-printtoconsole"]).stdout
        #expect(out.contains("STAND-IN komodod (openmp ok) -printtoconsole"))
        let chain = try podman.run("oci:\(f.store):revs:0.9.0").stdout
        #expect(chain.contains("-ac_name=REVS -ac_supply=1300000"))

        // The lock now records every image; --locked rebuilds to the same digests and downloads nothing.
        let requests = f.server.requests.count
        let again = try f.kiln(["build", f.recipes, "--locked"])
        #expect(again.succeeded)
        #expect(f.server.requests.count == requests)
        let images = try f.json(f.recipes + "/kiln.lock")["images"] as! [String: String]
        #expect(images["komodod:0.9.0"] != nil && images["revs:0.9.0"] != nil)
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
        try f.kiln(["lock", f.recipes])
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
        #expect(seeded.stderr.contains("komodo_linux.zip"))
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
        for name in ["debian-runtime", "iguana-runtime", "komodod", "bitcoind", "iguana", "revs", "pirate", "kmdice"] {
            #expect(images.contains(name), "\(name)")
        }
        let inputs = plan["inputs"] as! [[String: Any]]
        #expect(inputs.count == 5)
        for input in inputs {
            if let sha = input["sha256"] as? String {
                #expect(sha.range(of: "^sha256:[0-9a-f]{64}$", options: .regularExpression) != nil)
            } else {
                #expect((input["url"] as! String).hasSuffix("komodo_linux.zip"), "only komodod's archive is unpinned")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: tmp.path + "/images/index.json"))
    }
}
