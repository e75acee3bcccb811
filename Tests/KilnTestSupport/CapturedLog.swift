import Logging
import Synchronization

/// A swift-log logger whose messages a test reads back: proves a library logs through the logger it was given
/// (not a static one), at the level the caller chose.
public final class CapturedLog: Sendable {
    public struct Entry: Sendable {
        public var level: Logger.Level
        public var message: String
    }

    private let captured = Mutex<[Entry]>([])

    public init() {}

    /// A logger at `level` that records here everything at that level or above.
    public func logger(level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: "kiln.test") { _ in Handler(log: self) }
        logger.logLevel = level
        return logger
    }

    public var entries: [Entry] { captured.withLock { $0 } }

    /// Whether a message at `level` contains `text`.
    public func contains(_ text: String, at level: Logger.Level? = nil) -> Bool {
        entries.contains { $0.message.contains(text) && (level == nil || $0.level == level) }
    }

    fileprivate func record(_ entry: Entry) { captured.withLock { $0.append(entry) } }

    struct Handler: LogHandler {
        let log: CapturedLog
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            log.record(Entry(level: event.level, message: event.message.description))
        }
    }
}
