import KilnRecipe

/// Komodo's rules for a matrix over komodo's `assetchains.json`: each entry is an assetchain, given to komodod
/// as flags (`{{args}}`: `-ac_name=…` first, as komodo's own `listassetchainparams` prints them), and these
/// fields are computed rather than read:
/// - `{{p2p_port}}`, `{{rpc_port}}`: the ports komodod derives for the chain (`KomodoPorts`);
/// - `{{datadir}}`: where komodod keeps the chain, `$HOME/.komodo/SYMBOL` (HOME from the matrix's `env`);
/// - `{{chain}}`: the chain's name as dPoW uses it: the last component of its `datadir` when it has one
///   (dPoW's file runs GLEEC twice, the old chain in `GLEEC_OLD`), else its `ac_name`.
/// An entry komodod would not start without `-datadir` (the old GLEEC) is given dPoW's.
public struct KomodoMatrix: MatrixDerivation {
    public init() {}

    public var fields: Set<String> { ["p2p_port", "rpc_port", "datadir", "chain"] }
    /// The ports describe the image; komodod takes `-port`/`-rpcport`, never these.
    public var imageFields: Set<String> { ["p2p_port", "rpc_port"] }
    public var leadingFields: [String] { ["ac_name"] }

    public func value(of field: String, entry: [String: String], environment: [String: String]) throws -> String? {
        switch field {
        case "p2p_port", "rpc_port":
            do {
                let ports = try KomodoPorts.ports(entry)
                return String(field == "p2p_port" ? ports.p2p : ports.rpc)
            } catch {
                throw MatrixDerivationError(
                    "\(error)",
                    hint: "add \"p2p_port\" and \"rpc_port\" (komodod's ports for the chain) to its matrix entry")
            }
        case "datadir":
            guard let home = environment["HOME"] else { return nil }
            return home + "/.komodo/" + (entry["ac_name"] ?? "")
        case "chain":
            if let last = entry["datadir"]?.split(separator: "/").last(where: { !$0.isEmpty }) {
                return String(last)
            }
            return entry["ac_name"]
        default:
            return nil
        }
    }

    public func completion(of entry: [String: String], environment: [String: String]) throws -> [String: String] {
        guard KomodoPorts.needsDatadir(entry), entry["datadir"] == nil else { return [:] }
        // komodod refuses to start this chain without -datadir: give it dPoW's.
        guard let home = environment["HOME"] else {
            throw MatrixDerivationError(
                "komodod v0.9.2-2 starts the old GLEEC chain only with -datadir",
                hint: "give the image's home under the matrix: `env: {HOME: /home/komodo}`")
        }
        return ["datadir": home + "/.komodo/GLEEC_OLD"]
    }
}
