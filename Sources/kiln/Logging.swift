import ArgumentParser
import Foundation
import Logging

/// `--verbose`, else `KILN_LOG_LEVEL` (trace, debug, info, notice, warning, error, critical): how much of
/// what Kiln does behind the user's back (cache hits, lock decisions, retries) is logged to stderr.
struct LogOptions: ParsableArguments {
    @Flag(name: .long, help: "Log cache hits, lock decisions and retries to stderr (like KILN_LOG_LEVEL=debug).")
    var verbose = false

    private static let once = NSLock()
    nonisolated(unsafe) private static var done = false

    /// Sets up logging once per process; later calls do nothing (swift-log allows one bootstrap).
    func bootstrap(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let level =
            verbose
            ? .debug
            : environment["KILN_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) }
                ?? .warning
        Self.once.withLock {
            guard !Self.done else { return }
            Self.done = true
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}
