import Foundation
import KilnOCI
import Logging

extension OCILayout {
    /// A blob that garbage collection removed (or would remove).
    public struct Garbage: Sendable, Hashable {
        public var digest: Digest
        public var size: Int64
    }

    /// What a collection did: the blobs removed (or, dry, that would be) and the unreachable ones it kept only
    /// because they are younger than the grace period.
    public struct Collection: Sendable {
        public var removed: [Garbage]
        public var keptForGrace: [Garbage]
    }

    /// Removes every blob that no tag in index.json reaches (nor any of `extraRoots`, e.g. the manifests
    /// a release file pins), under the store lock so a concurrent build cannot tag something mid-sweep.
    /// Blobs a running build relies on but has not tagged yet are kept (`BuildRoots`), and so are blobs younger
    /// than `graceSeconds` (written by tools that register no roots). `logger` hears why each blob goes or stays.
    public func collectGarbage(
        extraRoots: [Descriptor] = [], dryRun: Bool, graceSeconds: TimeInterval = 3600,
        logger: Logger = Logger(label: "kiln.store")
    ) throws -> [Garbage] {
        try collect(extraRoots: extraRoots, dryRun: dryRun, graceSeconds: graceSeconds, logger: logger).removed
    }

    /// `collectGarbage`, also reporting what the grace period kept.
    public func collect(
        extraRoots: [Descriptor] = [], dryRun: Bool, graceSeconds: TimeInterval = 3600,
        logger: Logger = Logger(label: "kiln.store")
    ) throws -> Collection {
        try withLock {
            var live = runningBuildRoots()
            logger.debug("gc: \(live.count) blobs kept for running builds")
            for root in try index().manifests + extraRoots {
                live.formUnion(try reachableBlobs(from: root))
            }
            logger.debug("gc: \(live.count) blobs reachable from tags, releases and running builds")
            let now = Date()
            var collection = Collection(removed: [], keptForGrace: [])
            for digest in try allBlobs() where !live.contains(digest) {
                let attributes = try? FileManager.default.attributesOfItem(atPath: blobPath(digest))
                let modified = attributes?[.modificationDate] as? Date ?? .distantPast
                let item = Garbage(digest: digest, size: blobSize(digest) ?? 0)
                if now.timeIntervalSince(modified) < graceSeconds {
                    logger.debug("gc: \(digest) unreachable but younger than \(Int(graceSeconds)) s: kept")
                    collection.keptForGrace.append(item)
                } else {
                    logger.debug("gc: \(digest) unreachable: \(dryRun ? "would be removed" : "removed")")
                    collection.removed.append(item)
                }
            }
            if !dryRun {
                for item in collection.removed { try removeBlob(item.digest) }
                // Build-step staging left by a build that was killed (its process is gone).
                StagedDirectory.removeStale(in: root + "/builds")
            }
            return collection
        }
    }
}
