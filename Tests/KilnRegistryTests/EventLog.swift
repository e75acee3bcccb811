import Foundation
import KilnOCI

@testable import KilnRegistry

/// Collects transfer events for assertions.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [TransferEvent] = []

    func record(_ event: TransferEvent) {
        lock.lock()
        events.append(event)
        lock.unlock()
    }

    func clear() {
        lock.lock()
        events.removeAll()
        lock.unlock()
    }

    func uploads(of digest: Digest) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return events.filter { if case .blobUploaded(_, let d, _) = $0 { return d == digest } else { return false } }
            .count
    }

    var uploadCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return events.filter { if case .blobUploaded = $0 { return true } else { return false } }.count
    }

    var manifestPushes: Int {
        lock.lock()
        defer { lock.unlock() }
        return events.filter { if case .manifestPushed = $0 { return true } else { return false } }.count
    }

    func refusals(of digest: Digest) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return events.filter {
            if case .mountRefused(_, let d, _) = $0 { return d == digest } else { return false }
        }.count
    }

    var downloads: Int {
        lock.lock()
        defer { lock.unlock() }
        return events.filter { if case .blobDownloaded = $0 { return true } else { return false } }.count
    }

    var mounts: Int {
        lock.lock()
        defer { lock.unlock() }
        return events.filter { if case .blobMounted = $0 { return true } else { return false } }.count
    }
}
