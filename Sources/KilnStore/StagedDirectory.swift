import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A directory built under a temporary name beside its content-addressed slot, then published whole: one
/// `syncfs` makes every file in it durable (one sync per directory rather than one fsync per file: an archive
/// of 100,000 empty members unpacks in seconds), a rename gives it its name, a directory fsync keeps the
/// rename. A slot is therefore complete or absent. Staging directories of a process that died (an interrupted
/// unpack) are removed by `removeStale`, which the next unpack into the same parent runs first.
public final class StagedDirectory {
    /// Staging names: `.staging-<pid>-<random>`; the pid says whether the owner is still alive.
    static let prefix = ".staging-"

    public let path: String
    private var open = true

    /// Creates a fresh staging directory in `parent` (created if needed).
    public init(in parent: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw StoreError.io(path: parent, operation: "create the directory", detail: "\(error)")
        }
        path = "\(parent)/\(Self.prefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard mkdir(path, 0o755) == 0 else {
            throw StoreError.io(path: path, operation: "create the directory", detail: String(cString: strerror(errno)))
        }
    }

    deinit { discard() }

    /// Syncs the staged tree and renames it to `slot`. When `slot` already exists another process published
    /// the same content first: the staged copy is dropped and theirs is used.
    public func publish(as slot: String) throws {
        if try Self.publish(path, as: slot) {
            open = false
        } else {
            discard()
        }
    }

    /// The same for a directory staged elsewhere on the slot's filesystem (a build step's result inside its
    /// staging tree, a source's content root inside an extracted archive): syncs it, renames it to `slot`, and
    /// keeps the rename. Returns false when `slot` already existed (the caller drops its copy).
    @discardableResult
    public static func publish(_ path: String, as slot: String) throws -> Bool {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw StoreError.io(path: path, operation: "open", detail: String(cString: strerror(errno)))
        }
        let synced = kiln_syncfs(fd) == 0
        let detail = String(cString: strerror(errno))
        close(fd)
        guard synced else { throw StoreError.io(path: path, operation: "flush", detail: detail) }
        if rename(path, slot) != 0 {
            guard errno == EEXIST || errno == ENOTEMPTY else {
                throw StoreError.io(
                    path: slot, operation: "move into place", detail: String(cString: strerror(errno)))
            }
            return false
        }
        AtomicFile.syncDirectory(AtomicFile.directory(of: slot))
        return true
    }

    public func discard() {
        guard open else { return }
        open = false
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Removes the staging directories in `parent` whose process is gone (and the `.tmp-<pid>-…` ones older
    /// Kiln versions left). Returns what it removed.
    @discardableResult
    public static func removeStale(
        in parent: String, remove: (String) -> Void = { try? FileManager.default.removeItem(atPath: $0) }
    ) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
        var removed: [String] = []
        for name in names {
            let rest: Substring
            if name.hasPrefix(prefix) {
                rest = name.dropFirst(prefix.count)
            } else if name.hasPrefix(".tmp-") {
                rest = name.dropFirst(5)
            } else {
                continue
            }
            guard let pid = rest.split(separator: "-").first.flatMap({ pid_t($0) }), !alive(pid) else { continue }
            remove(parent + "/" + name)
            if access(parent + "/" + name, F_OK) != 0 { removed.append(parent + "/" + name) }
        }
        return removed
    }

    static func alive(_ pid: pid_t) -> Bool {
        if pid == getpid() { return true }
        return kill(pid, 0) == 0 || errno == EPERM
    }
}

/// glibc's `syncfs(2)`, which the Glibc module hides behind `_GNU_SOURCE`.
@_silgen_name("syncfs")
private func kiln_syncfs(_ fd: Int32) -> Int32
