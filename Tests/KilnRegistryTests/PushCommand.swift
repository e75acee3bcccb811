import Foundation
import KilnTestSupport

/// `kiln push --json` as a subprocess, for the tests whose subject is the command: its exit status, its messages,
/// the credentials and proxies it picks up from the environment.
enum PushCommand {
    struct Pushed: Decodable {
        var reference: String
        var repository: String
        var digest: String
        var tags: [String]
    }

    /// What `kiln push --json` prints: the images pushed.
    struct Report: Decodable {
        var images: [Pushed]
    }

    /// Pushes `images` (all tagged ones when empty) of `store` to `to`; the images pushed when it succeeded.
    static func run(
        _ store: String, to: String, _ extra: [String] = [], images: [String] = [], environment: [String: String] = [:],
        check: Bool = true
    ) throws -> (CommandResult, [Pushed]) {
        let result = try KilnBinary.run(
            ["push"] + images + ["--to", to, "--store", store, "--json"] + extra, environment: environment, check: check
        )
        let pushed =
            result.succeeded ? try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8)).images : []
        return (result, pushed)
    }
}
