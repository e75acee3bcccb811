import Foundation
import KilnRecipe
import Testing

@testable import KilnKomodo

/// komodod v0.9.2-2's port derivation, rule by rule. The published ports of real chains are checked against
/// dPoW's coin files in KomodoRecipesTests; here each normalisation komodod applies is shown to change (or
/// not change) the port exactly as komodod's `komodo_args` does.
@Suite struct KomodoPortsTests {
    func ports(_ entry: [String: String]) throws -> (p2p: Int, rpc: Int) { try KomodoPorts.ports(entry) }
    func extra(_ entry: [String: String]) throws -> [UInt8] {
        try KomodoPorts.parameters(KomodoPorts.Parameters(entry)).extra
    }

    static let zex = [
        "ac_name": "ZEX", "ac_founders": "1", "ac_reward": "13000000000", "ac_halving": "525600", "ac_cc": "2",
        "ac_pubkey": "039d4a50cc70d1184e462a22edb3b66385da97cc8059196f8305c184a3e21440af",
    ]

    @Test func foundersWithAPubkeyAndNoPercGetKomododsDefaultCommission() throws {
        // ZEX's RPC port as Komodo's documentation publishes it.
        #expect(try ports(Self.zex).rpc == 26477)
        var explicit = Self.zex
        explicit["ac_perc"] = "53846154"
        #expect(try ports(explicit) == ports(Self.zex))
        explicit["ac_perc"] = "1"
        #expect(try ports(explicit) != ports(Self.zex))
        // Without ac_pubkey (or ac_script) komodod drops founders and commission altogether.
        var noKey = Self.zex
        noKey["ac_pubkey"] = nil
        var plain = noKey
        plain["ac_founders"] = nil
        #expect(try ports(noKey) == ports(plain))
        // A founders reward instead of a commission leaves it at 0, and is serialised after the founders flag.
        var reward = Self.zex
        reward["ac_founders_reward"] = "1000"
        #expect(try extra(reward).suffix(9) == [1] + KomodoPorts.le(1000))
    }

    @Test func halvingIsUsedAsGiven() throws {
        let short = ["ac_name": "H", "ac_reward": "100", "ac_halving": "10"]
        // end, reward, halving, decay follow the 33-byte pubkey.
        #expect(Array(try extra(short)[49..<57]) == KomodoPorts.le(10))
        var raised = short
        raised["ac_halving"] = "1440"
        #expect(try ports(short) != ports(raised), "no raise to 1440 since 2018")
    }

    @Test func stakedIsCappedAt100() throws {
        let base = ["ac_name": "S", "ac_reward": "100", "ac_staked": "100"]
        var over = base
        over["ac_staked"] = "250"
        #expect(try ports(over) == ports(base))
        over["ac_staked"] = "99"
        #expect(try ports(over) != ports(base))
        // Without other parameters ac_staked does not reach the magic at all.
        #expect(try ports(["ac_name": "S", "ac_staked": "50"]) == ports(["ac_name": "S"]))
    }

    @Test func decayAbove100000000IsZero() throws {
        let base = ["ac_name": "D", "ac_reward": "100", "ac_end": "1000"]
        var decay = base
        decay["ac_decay"] = "150000000"
        #expect(try ports(decay) == ports(base))
        decay["ac_decay"] = "50000000"
        #expect(try ports(decay) != ports(base))
        // 100000000 (linear) needs ac_end: without it komodod also reads 0.
        var linear = ["ac_name": "D", "ac_reward": "100", "ac_decay": "100000000"]
        #expect(try ports(linear) == ports(["ac_name": "D", "ac_reward": "100"]))
        linear["ac_end"] = "1000"
        #expect(try ports(linear) != ports(base))
    }

    @Test func erasRepeatTheirLastValue() throws {
        let two = ["ac_name": "E", "ac_eras": "2", "ac_reward": "5,3", "ac_end": "100"]
        var spelled = two
        spelled["ac_end"] = "100,100"
        #expect(try ports(two) == ports(spelled))
        spelled["ac_eras"] = "1"
        #expect(try ports(two) != ports(spelled))
    }

    @Test func runtimeFlagsNeverReachTheMagic() throws {
        let chain = ["ac_name": "CCL", "ac_supply": "200000000", "ac_end": "1", "ac_cc": "2"]
        var runtime = chain
        for (key, value) in [
            ("datadir", "/home/komodo/.komodo/X"), ("earlytxid", "7e4a"), ("addnode", "1.2.3.4,5.6.7.8"),
            ("addressindex", "1"), ("spentindex", "1"), ("ac_sapling", "1"), ("ac_ccactivate", "100"),
        ] {
            runtime[key] = value
        }
        #expect(try ports(runtime) == ports(chain))
        #expect(try ports(chain) == (20848, 20849), "dPoW's published CCL ports")
        // -port and -rpcport override, as in komodod.
        runtime["port"] = "30000"
        #expect(try ports(runtime) == (30000, 30001))
        runtime["rpcport"] = "30500"
        #expect(try ports(runtime) == (30000, 30500))
    }

    @Test func whatKomododRefusesIsRefused() {
        let cases: [([String: String], String)] = [
            (["ac_name": "X", "ac_supply": "90000000001"], "-ac_supply must be less than 90 billion"),
            (["ac_name": "X", "ac_beam": "8000"], "can only have one of -ac_beam or -ac_coda"),
            (["ac_name": "X", "ac_perc": "1", "ac_founders_reward": "5"], "founders reward and commission"),
            (["ac_name": "X", "ac_import": "PUBKEY"], "invalid -ac_pubkey for -ac_import=PUBKEY"),
            (["ac_name": "KMD"], "other than KMD"),
        ]
        for (entry, message) in cases {
            #expect(throws: KomodoPorts.Failure.self) { try ports(entry) }
            do { _ = try ports(entry) } catch { #expect("\(error)".contains(message), "\(entry)") }
        }
        do { _ = try ports(["ac_name": "X", "ac_fooo": "1"]) } catch {
            #expect("\(error)" == "kiln does not know komodod's parameter ac_fooo")
        }
        do { _ = try ports(["ac_name": "X", "ac_reward": "lots"]) } catch {
            #expect("\(error)" == "'lots' is not a valid ac_reward")
        }
    }

    /// Swift's `Character.isHexDigit` accepts fullwidth digits, which no radix parser takes: a matrix value of
    /// 66 of them once passed the hex check and crashed kiln on a force-unwrap. Now it is a bad value.
    @Test func fullwidthHexIsABadValueNotACrash() {
        let fullwidth = String(repeating: "０", count: 66)
        for field in ["ac_pubkey", "ac_script", "ac_mineropret"] {
            #expect(throws: KomodoPorts.Failure.self, "\(field)") {
                try ports(["ac_name": "X", field: fullwidth])
            }
        }
    }

    @Test func theOldGleecChainNeedsADatadir() {
        let old = ["ac_name": "GLEEC", "ac_supply": "210000000", "ac_public": "1", "ac_staked": "100"]
        #expect(KomodoPorts.needsDatadir(old))
        var current = old
        current["ac_supply"] = "1000000000"
        #expect(!KomodoPorts.needsDatadir(current))
    }

    @Test(arguments: [
        (["ac_name": "REVS", "ac_supply": "1300000"], 10195),
        (["ac_name": "SUPERNET", "ac_supply": "816061"], 11340),
        (["ac_name": "DEX", "ac_supply": "999999"], 11889),
        (["ac_name": "KOIN", "ac_supply": "125000000", "addnode": "3.0.32.10"], 10701),
        (["ac_name": "ILN", "ac_supply": "10000000000", "ac_cc": "2"], 12985),
        (
            [
                "ac_name": "PIRATE", "ac_supply": "0", "ac_reward": "25600000000", "ac_halving": "77777",
                "ac_private": "1",
            ], 45452
        ),
        (["ac_name": "RFOX", "ac_supply": "1000000000", "ac_reward": "100000000"], 32268),
    ])
    /// Ports Komodo published for live chains (plain, and with consensus parameters).
    func knownChains(_ entry: [String: String], _ p2p: Int) throws {
        let ports = try KomodoPorts.ports(entry)
        #expect(ports.p2p == p2p)
        #expect(ports.rpc == p2p + 1)
    }

    @Test func matrixComputesPortsOrTakesThemFromTheEntry() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-ports-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try
            #"[{"ac_name": "REVS", "ac_supply": "1300000"}, {"ac_name": "NEW", "ac_xyz": "x", "p2p_port": 20000, "rpc_port": 20001}, {"ac_name": "ODD", "ac_xyz": "x"}]"#
            .write(toFile: dir + "/chains.json", atomically: true, encoding: .utf8)
        let yaml = """
            matrix: {file: chains.json}
            name: "{{ac_name | lower}}"
            version: "1"
            base: komodod
            cmd: ["{{args}}"]
            ports: ["{{p2p_port}}/tcp", "{{rpc_port}}/tcp"]
            """
        let (recipes, problems) = RecipeSet.parse(yaml, file: dir + "/ac.yaml", derivations: [KomodoMatrix()])
        #expect(recipes.isEmpty)
        #expect(
            problems.map { String($0.message.prefix(31)) } == [
                "cannot compute p2p_port for ODD", "cannot compute rpc_port for ODD",
            ])
        #expect(problems.first?.location.line == 6)
        try
            #"[{"ac_name": "REVS", "ac_supply": "1300000"}, {"ac_name": "NEW", "ac_xyz": "x", "p2p_port": 20000, "rpc_port": 20001}]"#
            .write(toFile: dir + "/chains.json", atomically: true, encoding: .utf8)
        let (ok, none) = RecipeSet.parse(yaml, file: dir + "/ac.yaml", derivations: [KomodoMatrix()])
        #expect(none.isEmpty)
        #expect(
            ok.map { $0.settings.exposedPorts?.keys.sorted() } == [
                ["10195/tcp", "10196/tcp"], ["20000/tcp", "20001/tcp"],
            ])
        // Port fields describe the image; they are not komodod flags.
        try #require(ok.count == 2)
        #expect(ok[1].settings.cmd == ["-ac_name=NEW", "-ac_xyz=x"])
    }
}
