import Foundation
import KilnProcess

/// Runs a verification tool (gpgv) to completion.
enum Subprocess {
    struct Result {
        var status: Int32
        var output: String
    }

    static func run(_ arguments: [String], in directory: String) throws -> Result {
        let captured: ChildProcess.Captured
        do {
            captured = try ChildProcess.capture(arguments, in: directory, timeLimit: 300)
        } catch let failure as SpawnFailure {
            throw DebianError.tool(command: arguments.joined(separator: " "), detail: failure.detail)
        }
        guard let status = captured.status else {
            throw DebianError.tool(command: arguments.joined(separator: " "), detail: "did not finish within 300 s")
        }
        return Result(status: status, output: captured.stdout + captured.stderr)
    }
}
