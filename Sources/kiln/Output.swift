import Foundation
import KilnHTTP
import KilnOCI
import Synchronization

/// Terminal output: the only place Kiln prints.
enum Output {
    static let isTerminal = isatty(STDERR_FILENO) != 0

    static func line(_ text: String) {
        print(text)
    }

    /// The first member of every `--json` document. Bumped only on an incompatible change (a member removed,
    /// renamed or changing meaning), never for a member added.
    static let schemaVersion = 1

    /// Every `--json` document, results and errors: `value`'s members (it must be an object, never a bare
    /// array) after `"schemaVersion": 1`. This is the one place that writes the version, so no command can
    /// leave it out.
    static func json<T: Encodable>(_ value: T) throws {
        let document = try CanonicalJSON.pretty(value, firstKey: "schemaVersion", value: schemaVersion)
        print(String(decoding: document, as: UTF8.self))
    }

    /// Progress and status go to stderr so stdout stays parseable. URLs in them (inputs, registries) are
    /// redacted as in error messages.
    static func status(_ text: String) {
        FileHandle.standardError.write(Data((Redaction.redact(text) + "\n").utf8))
    }

    /// A progress line that rewrites itself on a terminal; in CI logs it prints nothing (callers print a final line).
    static func progress(_ text: String) {
        guard isTerminal else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K\(Redaction.redact(text))".utf8))
    }

    /// A step that may take a while is starting: on a terminal the live line shows it (the next line replaces
    /// it), in a log it is a line of its own, so a pipe sees every step as it begins.
    static func step(_ text: String) {
        if isTerminal { progress(text) } else { status(text) }
    }

    static func endProgress() {
        guard isTerminal else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }

    static func bytes(_ n: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(n)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
    }

    static func short(_ digest: Digest) -> String {
        String(digest.encoded.prefix(12))
    }
}

/// Progress of one long write of known size: on a terminal a live line with bytes and percent (redrawn at most
/// five times a second), in a log one line when it starts.
final class ByteProgress: Sendable {
    private let drawn = Mutex<(lastDraw: Date, announced: Bool)>((.distantPast, false))
    let label: String

    init(label: String) { self.label = label }

    func report(_ done: Int64, _ total: Int64) {
        drawn.withLock { state in
            if !state.announced {
                state.announced = true
                if !Output.isTerminal { Output.status("\(label): \(Output.bytes(total)) …") }
            }
            guard Output.isTerminal, Date().timeIntervalSince(state.lastDraw) > 0.2 || done == total else { return }
            state.lastDraw = Date()
            let percent = total > 0 ? " (\(done * 100 / total)%)" : ""
            Output.progress("\(label): \(Output.bytes(done)) / \(Output.bytes(total))\(percent)")
        }
    }
}
