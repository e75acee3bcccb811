import Foundation
import KilnKomodo
import KilnRecipe
import Testing

/// The matrix seam: the recipe language computes nothing Komodo-specific by itself; with `KomodoMatrix` a
/// matrix over assetchains gets komodod's ports, datadirs, dPoW's chain names and its flags in komodod's order.
@Suite struct KomodoMatrixTests {
    static let yaml = """
        name: "{{ac_name | lower}}"
        version: "1"
        matrix: {file: chains.json, env: {HOME: /home/komodo}}
        layers: [{name: a, files: [{path: /a, content: a}]}]
        cmd: ["{{args}}"]
        ports: ["{{p2p_port}}/tcp"]
        labels: {chain: "{{chain}}", datadir: "{{datadir}}"}
        """

    func parse(_ derivations: [any MatrixDerivation]) throws -> ([Recipe], [Diagnostic]) {
        let dir = FileManager.default.temporaryDirectory.path + "/kiln-komodo-matrix-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let chains =
            #"[{"ac_name": "ZEX", "ac_founders": 1, "ac_reward": 13000000000, "ac_halving": 525600, "#
            + #""ac_cc": 2, "ac_pubkey": "039d4a50cc70d1184e462a22edb3b66385da97cc8059196f8305c184a3e21440af", "#
            + #""addnode": ["a", "b"]}]"#
        try chains.write(toFile: dir + "/chains.json", atomically: true, encoding: .utf8)
        return RecipeSet.parse(Self.yaml, file: dir + "/zex.yaml", derivations: derivations)
    }

    @Test func withoutKomodosRulesThePortsAreMissingFields() throws {
        let (recipes, problems) = try parse([])
        #expect(recipes.isEmpty)
        let messages = problems.map(\.message)
        #expect(messages.contains { $0.contains("template field 'p2p_port' is missing from matrix entry #1") })
        #expect(messages.contains { $0.contains("template field 'chain' is missing") })
    }

    @Test func withKomodosRulesTheChainGetsItsPortsNameAndFlags() throws {
        let (recipes, problems) = try parse([KomodoMatrix()])
        #expect(problems.isEmpty, "\(problems)")
        let recipe = try #require(recipes.first)
        #expect(recipe.name == "zex")
        // ZEX's RPC port is 26477 as Komodo publishes it, so its p2p port is 26476.
        #expect(recipe.settings.exposedPorts.map { Array($0.keys) } == ["26476/tcp"])
        #expect(recipe.settings.labels?["chain"] == "ZEX")
        #expect(recipe.settings.labels?["datadir"] == "/home/komodo/.komodo/ZEX")
        #expect(recipe.settings.cmd?.first == "-ac_name=ZEX")
        #expect(recipe.settings.cmd?.filter { $0.hasPrefix("-addnode=") } == ["-addnode=a", "-addnode=b"])
    }
}
