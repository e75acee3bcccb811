import ArgumentParser
import Foundation

/// Where the local image layout lives: `--store`, else `$KILN_STORE`, else `images`.
struct StoreOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp("The OCI image layout to use (default: $KILN_STORE, else ./images).", valueName: "dir"))
    var store: String?

    var path: String { store ?? ProcessInfo.processInfo.environment["KILN_STORE"] ?? "images" }
}

/// `--json` for scripts.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print machine-readable JSON instead of text.")
    var json = false
}

/// The OCI distribution grammar for a tag, `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`, ASCII only. A release
/// VERSION is a tag and names a file (`releases/VERSION.json`), so anything else (`../../etc/passwd`, a slash,
/// a non-ASCII letter) is a usage error before any file or registry is opened.
enum OCITag {
    static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...128).contains(bytes.count) else { return false }
        func word(_ byte: UInt8) -> Bool {
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x5F
        }
        return word(bytes[0]) && bytes.dropFirst().allSatisfy { word($0) || $0 == 0x2E || $0 == 0x2D }
    }

    /// Throws a usage error (exit 64) naming `what` when `text` is not a tag.
    static func check(_ text: String, as what: String = "release version") throws {
        guard isValid(text) else {
            throw ValidationError(
                "'\(text)' is not a valid \(what): an OCI tag is 1 to 128 ASCII letters, digits, _ . - (not starting with . or -)"
            )
        }
    }
}
