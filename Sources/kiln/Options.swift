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
