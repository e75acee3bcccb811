import ArgumentParser
import Foundation
import Logging
import Synchronization

/// `--verbose` / `--debug`, else `KILN_LOG_LEVEL` (trace, debug, info, notice, warning, error, critical): how
/// much of what Kiln does behind the user's back (cache hits, lock decisions, retries, requests, gc and sandbox
/// decisions) is logged to stderr. Every command takes this one group (a networked one through `RegistryFlags`),
/// `Kiln.runMapped` sets the level before the command runs, and the command hands `logger` to the libraries.
struct LogOptions: ParsableArguments {
    @Flag(name: .long, help: "Log cache hits, lock decisions and retries to stderr (like KILN_LOG_LEVEL=debug).")
    var verbose = false

    @Flag(name: .long, help: "Also log every HTTP request and its answer (like KILN_LOG_LEVEL=trace).")
    var debug = false

    private static let done = Mutex(false)

    /// The level these flags and the environment ask for.
    func level(environment: [String: String] = ProcessInfo.processInfo.environment) -> Logger.Level {
        if debug { return .trace }
        if verbose { return .debug }
        return environment["KILN_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .warning
    }

    /// The logger a command passes down to the libraries it calls, at the level these flags ask for.
    var logger: Logger {
        var logger = Logger(label: "kiln")
        logger.logLevel = level()
        return logger
    }

    /// Sets up logging once per process; later calls do nothing (swift-log allows one bootstrap).
    func bootstrap(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let level = level(environment: environment)
        Self.done.withLock { done in
            guard !done else { return }
            done = true
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}

/// A command with `--verbose` and `--debug` (every command but the groups of subcommands).
protocol LoggedCommand {
    var log: LogOptions { get }
}

/// A command that may talk to a registry or download: it has `RegistryFlags`, and with them the log options.
protocol NetworkedCommand: LoggedCommand {
    var registryFlags: RegistryFlags { get }
}

extension NetworkedCommand {
    var log: LogOptions { registryFlags.log }
}
