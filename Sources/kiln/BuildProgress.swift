import Foundation
import KilnBuild
import Synchronization

/// Turns the events of every stage into human output: input downloads, base image transfers, package set
/// decisions, build steps, a line per layer and per image, a live progress line on a terminal. Quiet (`--json`)
/// prints none of them.
final class ProgressReporter: Sendable {
    /// When the live line was last drawn; also keeps two events from printing at once.
    private let drawn = Mutex(Date.distantPast)
    private let quiet: Bool
    private let inputs: InputReporter
    private let transfers: TransferReporter

    init(quiet: Bool = false) {
        self.quiet = quiet
        inputs = InputReporter(quiet: quiet)
        transfers = TransferReporter(quiet: quiet)
    }

    func handle(_ event: BuildEvent) {
        switch event {
        case .input(let event): return inputs.handle(event)
        case .transfer(let event): return transfers.handle(event)
        default: break
        }
        guard !quiet else { return }
        drawn.withLock { lastDraw in draw(event, lastDraw: &lastDraw) }
    }

    private func draw(_ event: BuildEvent, lastDraw: inout Date) {
        switch event {
        case .input, .transfer:
            break
        case .status(let text):
            Output.endProgress()
            Output.status(text)
        case .step(let text):
            Output.step(text)
        case .layerReused(let image, let layer, let digest):
            Output.status("  \(image) ▸ \(layer): reused \(Output.short(digest))")
        case .layerFetched(let image, let layer, let digest, let from):
            Output.status("  \(image) ▸ \(layer): \(Output.short(digest)) from the cache \(from)")
        case .layerStarted(let image, let layer, let bytes):
            if !Output.isTerminal && bytes > 64 << 20 {
                Output.status("  \(image) ▸ \(layer): writing \(Output.bytes(bytes)) …")
            }
        case .layerProgress(let image, let layer, let done, let total):
            guard Date().timeIntervalSince(lastDraw) > 0.2, total > 0 else { return }
            lastDraw = Date()
            Output.progress(
                "  \(image) ▸ \(layer): \(Output.bytes(done)) / \(Output.bytes(total)) (\(done * 100 / total)%)")
        case .layerBuilt(let image, let layer, let digest, let size, let seconds):
            Output.endProgress()
            Output.status(
                "  \(image) ▸ \(layer): built \(Output.short(digest)) \(Output.bytes(size)) in \(String(format: "%.1fs", seconds))"
            )
        case .imageTagged(_, let references, let digest):
            Output.status("\(references.joined(separator: ", ")) → \(digest)")
        }
    }

    /// The last line of a build: images, layers written and reused (every platform's, as every one of them
    /// printed a line), and the time it took.
    static func summary(_ results: [BuiltImage], since started: Date) -> String {
        let built = results.reduce(0) { $0 + $1.layersWritten }
        let reused = results.reduce(0) { $0 + $1.layersReused }
        return
            "built \(results.count) image\(results.count == 1 ? "" : "s") (\(built) layers written, \(reused) reused) in "
            + String(format: "%.1fs", Date().timeIntervalSince(started))
    }
}
