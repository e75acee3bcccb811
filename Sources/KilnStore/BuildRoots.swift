import Foundation
import KilnOCI
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The blobs a running build will reference before it tags anything: `kiln gc` keeps them whatever their age.
///
/// Each build owns a file `.kiln/builds/<pid>-<uuid>` listing digests, one a line, and holds a shared flock on
/// it while it runs. Garbage collection (under the store lock) reads every such file whose flock is still held;
/// a file it can lock exclusively belongs to a build that died and is removed. A digest is added under the store
/// lock before the build relies on the blob (reuses a cached layer, adopts a new one, writes a config), so a
/// sweep either runs wholly before (the build then sees the blob gone and writes it) or honours it.
public final class BuildRoots: Sendable {
    let layout: OCILayout
    public let path: String
    private let fd: Int32
    /// Whether `finish` ran; held while writing, so no write reaches a descriptor already closed.
    private let closed = Mutex(false)

    public init(layout: OCILayout) throws {
        self.layout = layout
        let directory = layout.privateDirectory + "/builds"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = "\(directory)/\(getpid())-\(UUID().uuidString.lowercased())"
        self.path = path
        // Created and locked under the store lock: a sweep never sees the file unlocked and takes it for a
        // dead build's.
        fd = try layout.withLock {
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw StoreError.io(path: path, operation: "create", detail: String(cString: strerror(errno)))
            }
            while flock(fd, LOCK_SH) != 0 {
                guard errno == EINTR else {
                    let detail = String(cString: strerror(errno))
                    close(fd)
                    throw StoreError.io(path: path, operation: "lock", detail: detail)
                }
            }
            return fd
        }
    }

    deinit { finish() }

    /// Keeps `digests` from garbage collection until `finish()`. Never call it while holding the store lock.
    public func protect(_ digests: [Digest]) throws {
        guard !digests.isEmpty else { return }
        let text = digests.map { $0.description + "\n" }.joined()
        try layout.withLock {
            try closed.withLock { _ in
                try text.utf8CString.dropLast().withUnsafeBufferPointer { buffer in
                    var offset = 0
                    while offset < buffer.count {
                        let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                        if n < 0 && errno == EINTR { continue }
                        guard n > 0 else {
                            throw StoreError.io(
                                path: path, operation: "write", detail: String(cString: strerror(errno)))
                        }
                        offset += n
                    }
                }
            }
        }
    }

    /// The build is over (tagged, or failed): its blobs are ordinary blobs again.
    public func finish() {
        closed.withLock { closed in
            guard !closed else { return }
            closed = true
            unlink(path)
            close(fd)
        }
    }
}

extension OCILayout {
    /// Digests registered by builds still running; files of builds that died are removed. Under the store lock.
    func runningBuildRoots() -> Set<Digest> {
        let directory = privateDirectory + "/builds"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var live = Set<Digest>()
        for name in names {
            let path = directory + "/" + name
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 {
                // Nobody holds it: the build is gone (finished files are unlinked before they are closed).
                unlink(path)
                continue
            }
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                if let digest = try? Digest(parsing: String(line)) { live.insert(digest) }
            }
        }
        return live
    }
}
