import Foundation
import KilnBuild
import Synchronization

/// Turns build events into human output: a line per layer and per image, a live progress line on a terminal.
final class ProgressReporter: Sendable {
    /// When the live line was last drawn; also keeps two events from printing at once.
    private let drawn = Mutex(Date.distantPast)

    func handle(_ event: BuildEvent) {
        drawn.withLock { lastDraw in
            switch event {
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
    }
}
