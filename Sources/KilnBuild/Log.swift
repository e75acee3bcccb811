import Logging

/// What the pipeline decides behind the user's back (layer cache hits and misses, lock decisions, where an
/// input was found), for `--verbose` or `KILN_LOG_LEVEL`. What the user asked to see stays typed events
/// (`BuildEvent`).
enum Log {
    static let build = Logger(label: "kiln.build")
}
