import Foundation
import KilnOCI

/// What `record` did to the lock file.
public struct LockRecord: Sendable {
    public var path: String
    public var changed: Bool
    /// The lock as written (or as it already was).
    public var lock: LockFile
}

extension Pipeline {
    /// Writes what the build learnt into the lock, only after it succeeded: package sets resolved afresh,
    /// and, for a plain build of a checked-in lock, every input's and image's digest. `kiln lock` (no
    /// `results`) pins inputs and drops URLs no recipe names any more. `--locked` and `kiln verify` never write.
    /// Returns nil when there is no lock to keep (none exists and nothing was resolved).
    @discardableResult
    public static func record(_ prepared: PreparedInputs, results: [BuiltImage] = []) throws -> LockRecord? {
        let plan = prepared.plan
        let mode = plan.options.lockMode
        guard mode == .update || mode == .refresh else { return nil }
        // A lock file that exists (made by `kiln lock`, checked in) is kept up to date; a build creates one
        // only to record package sets it resolved.
        guard FileManager.default.fileExists(atPath: plan.lockPath) || !prepared.resolved.isEmpty || mode == .refresh
        else { return nil }
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
        for result in results
        where plan.recipe(named: result.name).map({ $0.platforms == $0.declaredPlatforms }) ?? true {
            lock.record(image: result.name, digest: result.digest)
        }
        guard lock != before else {
            Log.build.debug("lock \(plan.lockPath): unchanged")
            return LockRecord(path: plan.lockPath, changed: false, lock: lock)
        }
        Log.build.info(
            "lock \(plan.lockPath): written (\(prepared.resolved.count) package sets resolved, \(results.count) images)"
        )
        try lock.save(plan.lockPath)
        return LockRecord(path: plan.lockPath, changed: true, lock: lock)
    }
}
