import Foundation
import KilnOCI
import KilnStore
import Logging
import Synchronization

/// What `record` did to the lock file.
public struct LockRecord: Sendable {
    public var path: String
    public var changed: Bool
    /// The lock as written (or as it already was).
    public var lock: LockFile
}

/// A lock a build will write, already written to a temporary file beside it (so a directory that cannot take
/// it fails the build before the first tag); `commit` puts it in place after the last tag.
public final class StagedLock: Sendable {
    public let record: LockRecord
    private let writer: AtomicFileWriter?

    init(record: LockRecord, writer: AtomicFileWriter?) {
        self.record = record
        self.writer = writer
    }

    /// Renames the staged lock over the lock file (nothing to do when it is unchanged).
    public func commit() throws -> LockRecord {
        try writer?.commit()
        return record
    }

    public func discard() { writer?.discard() }
}

extension Pipeline {
    /// Builds, then records: the lock is staged (written beside itself, not yet in place) after every image is
    /// built and before the first tag, and put in place after the last tag. A lock that cannot be written
    /// therefore fails the build with nothing tagged; a lock that would not change is not written at all.
    static func buildAndRecord(
        _ prepared: PreparedInputs, outputs: BuildOutputs, into layout: OCILayout, tag: Bool,
        events: @escaping @Sendable (BuildEvent) -> Void
    ) async throws -> (images: [BuiltImage], lock: LockRecord?) {
        let staged = Mutex<StagedLock?>(nil)
        let images = try await build(prepared, outputs: outputs, into: layout, tag: tag, events: events) { results in
            let lock = try stageRecord(prepared, results: results)
            staged.withLock { $0 = lock }
        }
        return (images, try staged.withLock { $0 }?.commit())
    }

    /// Writes what the build learnt into the lock, only after it succeeded: package sets resolved afresh,
    /// and, for a plain build of a checked-in lock, every input's and image's digest. `kiln lock` pins inputs,
    /// drops URLs no recipe names any more and always writes the lock. `--locked` and `kiln verify` never write.
    /// Returns nil when there is no lock to keep (none exists and nothing was resolved).
    @discardableResult
    public static func record(_ prepared: PreparedInputs, results: [BuiltImage] = []) throws -> LockRecord? {
        try stageRecord(prepared, results: results)?.commit()
    }

    /// The lock `record` would write, staged beside the lock file (see `StagedLock`).
    public static func stageRecord(_ prepared: PreparedInputs, results: [BuiltImage] = []) throws -> StagedLock? {
        let plan = prepared.plan
        let mode = plan.options.lockMode
        guard mode == .update || mode == .refresh else { return nil }
        // A lock file that exists (made by `kiln lock`, checked in) is kept up to date; a build creates one
        // only to record package sets it resolved; `kiln lock` always leaves one.
        let exists = FileManager.default.fileExists(atPath: plan.lockPath)
        guard exists || !prepared.resolved.isEmpty || mode == .refresh else { return nil }
        var lock = try LockFile.load(plan.lockPath)
        let before = lock
        for (key, set) in prepared.resolved {
            lock.packages[key] = set.packages
            lock.packageRequests[key] = set.request
        }
        for (url, digest) in prepared.inputs { lock.inputs[url] = digest }
        if mode == .refresh {
            // URLs no recipe names any more leave the lock.
            let named = Set(plan.inputs.map(\.url))
            for url in lock.inputs.keys where !named.contains(url) { lock.inputs[url] = nil }
        }
        // An image narrowed by `--platform` is not the image the lock records (all its platforms).
        for result in results where plan.images.first(where: { $0.name == result.name })?.job.narrowed != true {
            lock.record(image: result.name, digest: result.digest)
        }
        guard lock != before || !exists else {
            plan.options.logger.debug("lock \(plan.lockPath): unchanged")
            return StagedLock(record: LockRecord(path: plan.lockPath, changed: false, lock: lock), writer: nil)
        }
        plan.options.logger.info(
            "lock \(plan.lockPath): written (\(prepared.resolved.count) package sets resolved, \(results.count) images)"
        )
        var data = try CanonicalJSON.pretty(lock)
        data.append(0x0A)
        let writer: AtomicFileWriter
        do {
            writer = try AtomicFileWriter(path: plan.lockPath)
            try data.withUnsafeBytes { try writer.write($0) }
        } catch {
            throw BuildError.lockNotWritable(path: plan.lockPath, reason: "\(error)")
        }
        return StagedLock(record: LockRecord(path: plan.lockPath, changed: true, lock: lock), writer: writer)
    }
}
