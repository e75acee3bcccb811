import Foundation
import KilnOCI

/// The p2p and RPC ports komodod derives for an assetchain from its parameters, so a matrix recipe can expose
/// them without a hand-kept table.
///
/// komodod (v0.9.2-2, `komodo_args` and `komodo_port` in `src/komodo_utils.cpp`) serialises the chain's
/// consensus parameters into an "extra" buffer in a fixed order, seeds a crc32 over (supply, symbol) with the
/// first word of its sha256, and takes the p2p port from that "magic": `8000 + magic % 7777` when the buffer
/// is empty, else `16000 + magic % 49500`; RPC is p2p + 1. This file follows that code parameter by
/// parameter, including komodod's normalisations (a commission of 53846154 for `ac_founders` with
/// `ac_pubkey` and no `ac_perc`, `ac_staked` capped at 100, `ac_decay` above 100000000 read as 0, eras
/// filled from their last value), and refuses the combinations komodod refuses to start with.
public enum KomodoPorts {
    /// komodod flags that are read but never reach the magic, or that are not chain parameters at all.
    static let neutral: Set<String> = [
        "ac_name", "ac_cc", "ac_ccactivate", "ac_ccactivateht", "ac_sapling", "ac_overwinter", "ac_algo",
        "ac_timelockfrom", "ac_timelockto",
    ]
    /// Every `ac_*` flag komodod v0.9.2-2 reads in `komodo_args`; an `ac_*` outside this set and `neutral` is
    /// refused rather than guessed at.
    static let consensus: Set<String> = [
        "ac_supply", "ac_end", "ac_reward", "ac_halving", "ac_decay", "ac_notarypay", "ac_eras", "ac_perc",
        "ac_pubkey", "ac_script", "ac_founders", "ac_founders_reward", "ac_public", "ac_private", "ac_txpow",
        "ac_staked", "ac_timelockgte", "ac_timeunlockfrom", "ac_timeunlockto", "ac_import", "ac_beam", "ac_coda",
        "ac_ccenable", "ac_cclib", "ac_blocktime", "ac_mineropret", "ac_nk", "ac_snapshot",
        "ac_earlytxidcontract", "ac_cbmaturity", "ac_adaptivepow",
    ]
    static let maxEras = 7
    static let timelockOff = UInt64.max

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case unmodelled([String])
        case badValue(field: String, value: String)
        /// komodod itself would not start the chain (its own message).
        case refused(String)

        public var description: String {
            switch self {
            case .unmodelled(let fields):
                return "kiln does not know komodod's parameter \(fields.joined(separator: ", "))"
            case .badValue(let field, let value):
                return "'\(value)' is not a valid \(field)"
            case .refused(let message):
                return "komodod would refuse to start this chain: \(message)"
            }
        }
    }

    /// (p2p, rpc) for a chain's matrix entry (values as strings, lists joined by commas). `port` and `rpcport`
    /// entries override them, as they do in komodod.
    public static func ports(_ entry: [String: String]) throws -> (p2p: Int, rpc: Int) {
        let unknown = entry.keys.filter { $0.hasPrefix("ac_") && !neutral.contains($0) && !consensus.contains($0) }
        if !unknown.isEmpty { throw Failure.unmodelled(unknown.sorted()) }
        let symbol = entry["ac_name"] ?? ""
        if symbol.isEmpty || symbol == "KMD" { throw Failure.refused("an assetchain needs an ac_name other than KMD") }
        let (supply, extra) = try parameters(Parameters(entry))
        let magic = assetMagic(symbol: symbol, supply: supply, extra: extra)
        var p2p = extra.isEmpty ? 8000 + Int(magic % 7777) : 16000 + Int(magic % 49500)
        let port = try Parameters(entry).int("port", 0), rpcPort = try Parameters(entry).int("rpcport", 0)
        if port != 0 { p2p = Int(UInt16(truncatingIfNeeded: port)) }
        let rpc = rpcPort != 0 ? Int(UInt16(truncatingIfNeeded: rpcPort)) : p2p + 1
        return (p2p, rpc)
    }

    /// komodod v0.9.2-2 refuses to start the old GLEEC chain (supply 210000000, ac_staked 100: the GLEEC of
    /// komodo-daemon's assetchains.json) without `-datadir`, so it cannot clash with the current GLEEC.
    public static func needsDatadir(_ entry: [String: String]) -> Bool {
        let p = Parameters(entry)
        return entry["ac_name"] == "GLEEC" && (try? p.int("ac_supply", 10)) == 210_000_000
            && (try? p.int("ac_staked", 0)) == 100
    }

    /// The supply and the extra buffer `komodo_args` builds (empty when the chain has no consensus parameters).
    static func parameters(_ p: Parameters) throws -> (supply: UInt64, extra: [UInt8]) {
        let end = try p.eras("ac_end"), reward = try p.eras("ac_reward"), halving = try p.eras("ac_halving")
        var decay = try p.eras("ac_decay")
        let notaryPay = try p.eras("ac_notarypay")
        var lastEra = try p.int("ac_eras", 1)
        if lastEra < 1 || lastEra > Int64(maxEras) { lastEra = 1 }
        lastEra -= 1
        var lockGTE = UInt64(bitPattern: try p.int("ac_timelockgte", -1))
        var unlockFrom = UInt64(bitPattern: try p.int("ac_timeunlockfrom", 0))
        var unlockTo = UInt64(bitPattern: try p.int("ac_timeunlockto", 0))
        if unlockFrom > unlockTo { (lockGTE, unlockFrom, unlockTo) = (timelockOff, 0, 0) }
        for i in 0..<maxEras where (decay[i] == 100_000_000 && end[i] == 0) || decay[i] > 100_000_000 { decay[i] = 0 }
        let txpow = UInt64(bitPattern: try p.int("ac_txpow", 0) & 3)
        var founders = Int32(truncatingIfNeeded: try p.int("ac_founders", 0))
        let foundersReward = UInt64(bitPattern: try p.int("ac_founders_reward", 0))
        let supply = UInt64(bitPattern: try p.int("ac_supply", 10))
        if supply > 90_000_000_000 { throw Failure.refused("-ac_supply must be less than 90 billion") }
        var commission = UInt64(bitPattern: try p.int("ac_perc", 0))
        let pubkeyHex = p.string("ac_pubkey"), scriptHex = p.string("ac_script")
        let beam = try p.int("ac_beam", 0), coda = try p.int("ac_coda", 0)
        let cbMaturity = Int32(truncatingIfNeeded: try p.int("ac_cbmaturity", 0))
        let adaptivePow = UInt8(truncatingIfNeeded: try p.int("ac_adaptivepow", 0))
        let minerOpret = try p.hex("ac_mineropret", p.string("ac_mineropret"))
        if commission != 0 && foundersReward != 0 {
            throw Failure.refused("cannot use founders reward and commission on the same chain")
        }
        // CC settings: ac_ccenable and ac_cclib only count with ac_cc.
        let cc = UInt32(truncatingIfNeeded: try p.int("ac_cc", 0))
        var cclib = "", enabled = 0
        var disableBits = [UInt8](repeating: 0, count: 32)
        if cc != 0 {
            cclib = p.string("ac_cclib")
            let enables = try p.list("ac_ccenable", count: 256)
            var previous: UInt8 = 0
            for value in enables where value != UInt64(previous) && value != 0 {
                enabled += 1
                previous = UInt8(truncatingIfNeeded: value)
            }
            if enabled > 0 {
                disableBits = [UInt8](repeating: 0xff, count: 32)
                for value in enables.prefix(enabled) { clearBit(&disableBits, Int(value & 0xff)) }
                clearBit(&disableBits, 0)
            }
        }
        if beam != 0 { throw Failure.refused("can only have one of -ac_beam or -ac_coda") }
        let selfImport = p.string("ac_import")
        switch selfImport {
        case "", "PUBKEY":
            if selfImport == "PUBKEY" && pubkeyHex.count != 66 {
                throw Failure.refused("invalid -ac_pubkey for -ac_import=PUBKEY")
            }
        case "BEAM": throw Failure.refused("missing -ac_beam for BEAM rpcport")
        case "CODA": if coda == 0 { throw Failure.refused("missing -ac_coda for CODA rpcport") }
        default:
            if end[0] != 1 || supply > 0 || commission != 0 {
                throw Failure.refused("when using gateway import these must be set: -ac_end=1 -ac_supply=0 -ac_perc=0")
            }
        }
        var staked = Int32(truncatingIfNeeded: try p.int("ac_staked", 0))
        if staked > 100 { staked = 100 }
        var pubkey = [UInt8](repeating: 0, count: 33)
        if pubkeyHex.count == 66 || scriptHex.count > 1 {
            if supply > 10_000_000_000 {
                throw Failure.refused("ac_pubkey or ac_script wont work with ac_supply over 10 billion")
            }
            if notaryPay[0] != 0 {
                throw Failure.refused("Assetchains NOTARY PAY cannot be used with ac_pubkey or ac_script")
            }
            if pubkeyHex.count == 66 { pubkey = try p.hex("ac_pubkey", pubkeyHex) }
            // komodod's default commission for a founders chain: 35% of the block reward.
            if commission == 0 && founders != 0 && foundersReward == 0 { commission = 53_846_154 }
        } else {
            commission = 0
            founders = 0
        }
        let isPublic = UInt8(truncatingIfNeeded: try p.int("ac_public", 0))
        let isPrivate = UInt8(truncatingIfNeeded: try p.int("ac_private", 0))
        let blockTime = Int32(truncatingIfNeeded: try p.int("ac_blocktime", 60))
        let nk = try p.list("ac_nk", count: 2)
        let snapshot = Int32(truncatingIfNeeded: try p.int("ac_snapshot", 0))
        let earlyTxidContract = Int32(truncatingIfNeeded: try p.int("ac_earlytxidcontract", 0))

        let anySet =
            end[0] != 0 || reward[0] != 0 || halving[0] != 0 || decay[0] != 0 || commission != 0 || isPublic != 0
            || isPrivate != 0 || txpow != 0 || founders != 0 || scriptHex.count > 1 || !selfImport.isEmpty
            || pubkey[0] != 0 || lockGTE != timelockOff || lastEra > 0 || coda != 0 || enabled > 0
            || !cclib.isEmpty || foundersReward != 0 || notaryPay[0] != 0 || blockTime != 60 || !minerOpret.isEmpty
            || (nk[0] != 0 && nk[1] != 0) || snapshot != 0 || earlyTxidContract != 0 || cbMaturity != 0
            || adaptivePow != 0
        guard anySet else { return (supply, []) }
        var out = pubkey
        for i in 0...Int(lastEra) {
            for value in [end[i], reward[i], halving[i], decay[i]] { out += le(value) }
            if notaryPay[0] != 0 { out += le(notaryPay[i]) }
        }
        if lastEra > 0 { out += le(UInt64(lastEra)) }
        if lockGTE != timelockOff { out += le(lockGTE) + le(unlockFrom) + le(unlockTo) }
        let flags =
            commission | (UInt64(UInt32(bitPattern: staked) & 0xff) << 32) | ((UInt64(cc) & 0xffff) << 40)
            | (isPublic != 0 ? 1 << 7 : 0) | (isPrivate != 0 ? 1 << 6 : 0) | txpow
        out += le(flags)
        if founders != 0 {
            out.append(1)
            if founders > 1 { out += le(UInt64(UInt32(bitPattern: founders)), bytes: 4) }
            if foundersReward != 0 { out += le(foundersReward) }
        }
        if scriptHex.count > 1 { out += try p.hex("ac_script", scriptHex) }
        out += Array(selfImport.utf8)
        if coda != 0 { out.append(UInt8(ascii: "c")) }
        if enabled > 0 { out += disableBits }
        if cclib.count > 1 { out += Array(cclib.utf8) }
        if blockTime != 60 { out += le(UInt64(UInt32(bitPattern: blockTime)), bytes: 4) }
        out += minerOpret
        if nk[0] != 0 && nk[1] != 0 { out += le(nk[0]) + le(nk[1]) }
        for value in [snapshot, earlyTxidContract, cbMaturity] where value != 0 {
            out += le(UInt64(UInt32(bitPattern: value)), bytes: 4)
        }
        if adaptivePow != 0 { out.append(adaptivePow) }
        return (supply, out)
    }

    /// crc32 over (supply, little endian) ‖ symbol, seeded with the first word of sha256(extra) when present.
    static func assetMagic(symbol: String, supply: UInt64, extra: [UInt8]) -> UInt32 {
        var seed: UInt32 = 0
        if !extra.isEmpty {
            let hash = Hex.decode(Digest.sha256(Data(extra)).encoded)!
            seed = UInt32(hash[0]) | UInt32(hash[1]) << 8 | UInt32(hash[2]) << 16 | UInt32(hash[3]) << 24
        }
        return crc32(seed, le(supply) + Array(symbol.utf8))
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

    private static func clearBit(_ bits: inout [UInt8], _ bit: Int) { bits[bit >> 3] &= ~(1 << UInt8(bit & 7)) }

    static func le(_ value: UInt64, bytes: Int = 8) -> [UInt8] {
        (0..<bytes).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    /// A matrix entry read the way komodod reads its flags (`GetArg`, `Split`).
    struct Parameters {
        let entry: [String: String]
        init(_ entry: [String: String]) { self.entry = entry }

        func string(_ field: String) -> String { entry[field] ?? "" }

        /// `GetArg(field, default)`: a signed 64-bit integer. komodod's strtoll would read "12abc" as 12 and
        /// "abc" as 0; Kiln asks for a plain integer instead of guessing what was meant.
        func int(_ field: String, _ defaultValue: Int64) throws -> Int64 {
            guard let text = entry[field] else { return defaultValue }
            guard let value = Int64(text.trimmingCharacters(in: .whitespaces)) else {
                throw Failure.badValue(field: field, value: text)
            }
            return value
        }

        /// `Split(field, count)`: unsigned numbers separated by commas or spaces, the last repeated to `count`.
        func list(_ field: String, count: Int) throws -> [UInt64] {
            guard let text = entry[field] else { return [UInt64](repeating: 0, count: count) }
            let parts = text.split(whereSeparator: { $0 == "," || $0 == " " })
            var values: [UInt64] = []
            for part in parts {
                guard let value = UInt64(part) else { throw Failure.badValue(field: field, value: text) }
                values.append(value)
            }
            let last = values.last ?? 0
            return Array((values + [UInt64](repeating: last, count: max(0, count - values.count))).prefix(count))
        }

        /// One value per era (komodod's arrays hold ASSETCHAINS_MAX_ERAS + 1).
        func eras(_ field: String) throws -> [UInt64] { try list(field, count: KomodoPorts.maxEras + 1) }

        func hex(_ field: String, _ text: String) throws -> [UInt8] {
            if text.isEmpty { return [] }
            guard let bytes = Hex.decode(text) else { throw Failure.badValue(field: field, value: text) }
            return bytes
        }
    }
}
