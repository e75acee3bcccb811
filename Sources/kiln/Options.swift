import ArgumentParser
import Foundation
import KilnOCI

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

extension OCITag {
    /// Throws a usage error (exit 64) naming `what` when `text` is not a tag. A release VERSION is a tag and
    /// names a file (`releases/VERSION.json`), so anything else (`../../etc/passwd`, a slash, a non-ASCII
    /// letter) is refused before any file or registry is opened.
    static func check(_ text: String, as what: String = "release version") throws {
        guard isValid(text) else { throw ValidationError("'\(text)' is not a valid \(what): an OCI tag is \(rule)") }
    }
}
