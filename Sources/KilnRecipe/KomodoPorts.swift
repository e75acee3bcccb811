import Foundation
import KilnOCI

/// The p2p and RPC ports komodod derives for an assetchain from its parameters, so a matrix recipe can expose
/// them without a hand-kept table.
///
/// komodod hashes the chain's symbol and supply (and, for chains with consensus-changing parameters, a sha256
/// of those parameters serialised in a fixed order) into a 32-bit "magic"; the p2p port is
/// `8000 + magic % 7777` for plain chains and `16000 + magic % 49500` for the others, RPC is p2p + 1.
/// Kiln models the parameters the chains in komodo's assetchains.json use; for any other consensus parameter
/// it refuses to guess and asks for explicit `p2p_port`/`rpc_port` fields instead.
public enum KomodoPorts {
    /// Parameters that only change what komodod does at runtime, not the magic.
    static let neutral: Set<String> = [
        "ac_name", "ac_supply", "ac_cc", "ac_staked", "ac_ccactivate", "ac_sapling", "addnode", "addressindex",
        "spentindex", "p2p_port", "rpc_port",
    ]
    /// Consensus parameters serialised into the magic that Kiln models.
    static let modelled: Set<String> = [
        "ac_end", "ac_reward", "ac_halving", "ac_decay", "ac_perc", "ac_public", "ac_private", "ac_pubkey",
        "ac_founders", "ac_eras",
    ]

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case unmodelled([String])
        case badValue(field: String, value: String)

        public var description: String {
            switch self {
            case .unmodelled(let fields):
                return "kiln cannot derive komodod's ports from \(fields.joined(separator: ", "))"
            case .badValue(let field, let value):
                return "'\(value)' is not a valid \(field)"
            }
        }
    }

    /// (p2p, rpc) for a chain's matrix entry (values as strings, lists joined by commas).
    public static func ports(_ entry: [String: String]) throws -> (p2p: Int, rpc: Int) {
        let symbol = entry["ac_name"] ?? ""
        let supply = try number(entry, "ac_supply") ?? 10
        let unmodelled = entry.keys.filter { !neutral.contains($0) && !modelled.contains($0) }.sorted()
        if !unmodelled.isEmpty { throw Failure.unmodelled(unmodelled) }
        if let eras = try number(entry, "ac_eras"), eras > 1 { throw Failure.unmodelled(["ac_eras > 1"]) }
        let extra = try extraParameters(entry)
        let magic = assetMagic(symbol: symbol, supply: supply, extra: extra)
        let p2p = extra.isEmpty ? 8000 + Int(magic % 7777) : 16000 + Int(magic % 49500)
        return (p2p, p2p + 1)
    }

    /// The consensus parameters in komodod's order, or empty when the chain has none.
    static func extraParameters(_ entry: [String: String]) throws -> [UInt8] {
        let end = try number(entry, "ac_end") ?? 0
        let reward = try number(entry, "ac_reward") ?? 0
        var halving = try number(entry, "ac_halving") ?? 0
        var decay = try number(entry, "ac_decay") ?? 0
        var commission = try number(entry, "ac_perc") ?? 0
        let isPublic = try number(entry, "ac_public") ?? 0
        let isPrivate = try number(entry, "ac_private") ?? 0
        var founders = try number(entry, "ac_founders") ?? 0
        let staked = try number(entry, "ac_staked") ?? 0
        let cc = try number(entry, "ac_cc") ?? 0
        var pubkey = [UInt8](repeating: 0, count: 33)
        if let hex = entry["ac_pubkey"] {
            guard hex.count == 66, let bytes = bytes(hex: hex) else {
                throw Failure.badValue(field: "ac_pubkey", value: hex)
            }
            pubkey = bytes
        }
        // komodod's own normalisation, applied before it serialises.
        if halving != 0 && halving < 1440 { halving = 1440 }
        if decay == 100_000_000 && end == 0 { decay = 0 }
        if pubkey[0] == 0 {
            commission = 0
            founders = 0
        }
        let anySet =
            end != 0 || reward != 0 || halving != 0 || decay != 0 || commission != 0 || isPublic != 0
            || isPrivate != 0 || founders != 0 || pubkey[0] != 0
        guard anySet else { return [] }
        var out = pubkey
        for value in [end, reward, halving, decay] { out += littleEndian(value) }
        let val =
            commission | ((staked & 0xff) << 32) | ((cc & 0xffff) << 40) | ((isPublic != 0 ? 1 : 0) << 7)
            | ((isPrivate != 0 ? 1 : 0) << 6)
        out += littleEndian(val)
        if founders != 0 {
            out.append(1)
            if founders > 1 { throw Failure.unmodelled(["ac_founders > 1"]) }
        }
        return out
    }

    /// crc32 over (supply, little endian) ‖ symbol, seeded with the first word of sha256(extra) when present.
    static func assetMagic(symbol: String, supply: UInt64, extra: [UInt8]) -> UInt32 {
        var seed: UInt32 = 0
        if !extra.isEmpty {
            let hash = bytes(hex: Digest.sha256(Data(extra)).encoded)!
            seed = UInt32(hash[0]) | UInt32(hash[1]) << 8 | UInt32(hash[2]) << 16 | UInt32(hash[3]) << 24
        }
        return crc32(seed, littleEndian(supply) + Array(symbol.utf8))
    }

    static func crc32(_ seed: UInt32, _ bytes: [UInt8]) -> UInt32 {
        var crc = ~seed
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8) }
        return ~crc
    }

    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    private static func number(_ entry: [String: String], _ field: String) throws -> UInt64? {
        guard let text = entry[field] else { return nil }
        // Multi-era values list one number per era; era 0 is what the magic uses (ac_eras > 1 is refused).
        let first = text.split(separator: ",").first.map(String.init) ?? text
        guard let value = UInt64(first.trimmingCharacters(in: .whitespaces)) else {
            throw Failure.badValue(field: field, value: text)
        }
        return value
    }

    private static func littleEndian(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    private static func bytes(hex: String) -> [UInt8]? {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) ?? hex.endIndex
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            result.append(byte)
            index = next
        }
        return result
    }
}
