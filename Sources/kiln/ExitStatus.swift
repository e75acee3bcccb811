import ArgumentParser
import Foundation
import KilnBuild
import KilnHTTP
import KilnOCI
import KilnRecipe
import KilnRelease

/// Kiln's exit codes, the same in every command (README "Exit codes").
enum ExitStatus {
    /// The command did what was asked.
    static let success: Int32 = 0
    /// The check ran and found a difference: `verify`, `build --locked`, `rollback` to an incomplete release.
    static let differs: Int32 = 1
    /// The command could not do its work (a registry, the network, the store, the disk, an unknown image).
    static let failure: Int32 = 2
    /// The command line itself is wrong (EX_USAGE).
    static let usage: Int32 = 64
    /// A recipe (or the lock beside it) is wrong (EX_DATAERR).
    static let badRecipe: Int32 = 65
    /// Inputs a build needs are not at hand (EX_NOINPUT).
    static let missingInput: Int32 = 66
}

/// A command that could not do its work for a reason no library error names (exit 2).
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Kiln {
    /// Runs the command and maps every error to one exit code and one message, so that no command decides on
    /// its own what an unknown image or an unreachable registry exits with. With `--json`, the error is also
    /// printed as JSON on stdout, where a script reads the command's result.
    static func runMapped() async -> Never {
        let command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            parseFailed(error)
        }
        // One place sets the log level (--verbose, --debug, KILN_LOG_LEVEL) for every command.
        (command as? LoggedCommand)?.log.bootstrap()
        do {
            if var command = command as? AsyncParsableCommand {
                try await command.run()
            } else {
                var command = command
                try command.run()
            }
            Foundation.exit(ExitStatus.success)
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)

        } catch let error as ValidationError {
            fail(error.message, status: ExitStatus.usage, usage: true)
        } catch let error where String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
            // ArgumentParser's own commands answer by throwing: `--help`, `-h` and `kiln help CMD` parse into its
            // help command, whose run throws the help request; bare `kiln` (a command with only subcommands)
            // throws CleanExit. Those print the help and exit 0; anything else of its own is a usage error.
            parseFailed(error)
        } catch let error as RecipeError {
            fail(error.description, status: ExitStatus.badRecipe)
        } catch let error as BuildError {
            switch error {
            case .recipe, .invalidLock: fail(error.description, status: ExitStatus.badRecipe)
            case .cacheReference: fail(error.description, status: ExitStatus.usage)
            case .lockMismatch, .lockedImageDiffers: fail(error.description, status: ExitStatus.differs)
            case .inputsMissing: fail(error.description, status: ExitStatus.missingInput)
            case .platformNotBuilt: fail(error.description, status: ExitStatus.usage)
            default: fail(error.description, status: ExitStatus.failure)
            }
        } catch ReleaseError.missingContent(let version, let missing) {
            // Rollback's completeness check ran and found the registry lacking part of the release.
            fail(
                ReleaseError.missingContent(version: version, missing: missing).description,
                status: ExitStatus.differs)
        } catch {
            // `kiln CMD --help` parses as ArgumentParser's help command, whose run throws its request: shown as
            // ArgumentParser shows it (the help text, exit 0), not as a failure.
            if exitCode(for: error) == .success { exit(withError: error) }
            fail(String(describing: error), status: ExitStatus.failure)
        }
    }

    /// What the command line could not be parsed into: help, `--version` and the other requests ArgumentParser
    /// answers itself (exit 0, on stdout), or a usage error (64, on stderr, and as JSON on stdout with `--json`).
    private static func parseFailed(_ error: Error) -> Never {
        let code = exitCode(for: error).rawValue
        guard code != ExitStatus.success, CommandLine.arguments.contains("--json") else { exit(withError: error) }
        FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
        printJSON(message(for: error), status: code)
        Foundation.exit(code)
    }

    private static func printJSON(_ message: String, status: Int32) {
        struct Failure: Encodable {
            var error: String
            var exitCode: Int32
        }
        try? Output.json(Failure(error: message, exitCode: status))
    }

    private static func fail(_ message: String, status: Int32, usage: Bool = false) -> Never {
        // Every error of every module passes here: URLs lose their query tokens and passwords, echoed
        // credentials their value (the library errors that carry URLs are redacted already).
        let message = Redaction.redact(message)
        // Diagnostics that locate themselves (`FILE:LINE:COL: error: …`, as compilers print them) stand as
        // they are; anything else is marked as Kiln's error.
        let located = message.prefix { $0 != "\n" }.contains(": error: ")
        let bare = message.hasPrefix("error: ") ? String(message.dropFirst("error: ".count)) : message
        let text = message.hasPrefix("Error:") || located ? message : "Error: " + bare
        FileHandle.standardError.write(Data((text + (usage ? "\nSee 'kiln --help'." : "") + "\n").utf8))
        if CommandLine.arguments.contains("--json") { printJSON(message, status: status) }
        Foundation.exit(status)
    }
}
