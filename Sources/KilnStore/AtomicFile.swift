import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The one durability seam: every file Kiln keeps is written under a temporary sibling name, fsynced, renamed
/// over its final name and made durable with a directory fsync, so a crash leaves the old file or the new one,
/// never a torn one. Whole files go through `write`, streams through `AtomicFileWriter`, writers that insist
/// on a path of their own (the layer writer) through `replace`, and whole directories through
/// `StagedDirectory`.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String, mode: mode_t = 0o644) throws {
        let writer = try AtomicFileWriter(path: path, mode: mode)
        do {
            try data.withUnsafeBytes { try writer.write($0) }
            try writer.commit()
        } catch {
            writer.discard()
            throw error
        }
    }

    /// Lets `produce` write a temporary sibling of `path` by name, then fsyncs it and renames it into place.
    /// Nothing is left behind when `produce` throws.
    public static func replace<T>(_ path: String, _ produce: (String) throws -> T) throws -> T {
        let temp = temporaryName(for: path)
        do {
            let result = try produce(temp)
            let fd = open(temp, O_RDONLY | O_CLOEXEC)
            guard fd >= 0, fsync(fd) == 0 else {
                let detail = String(cString: strerror(errno))
                if fd >= 0 { close(fd) }
                throw StoreError.io(path: temp, operation: "flush", detail: detail)
            }
            close(fd)
            try rename(temp, over: path)
            return result
        } catch {
            unlink(temp)
            throw error
        }
    }

    /// Renames `temp` over `path` and fsyncs the directory that holds it.
    static func rename(_ temp: String, over path: String) throws {
        guard Glibc.rename(temp, path) == 0 else {
            throw StoreError.io(path: path, operation: "move into place", detail: String(cString: strerror(errno)))
        }
        syncDirectory(directory(of: path))
    }

    /// Makes a rename durable.
    public static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    /// Writes every byte of `bytes` to `fd`, continuing after short writes and EINTR.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        guard var base = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = Glibc.write(fd, base, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError.io(path: path, operation: "write", detail: String(cString: strerror(errno)))
            }
            base += n
            left -= n
        }
    }

    /// A hidden sibling name unique to this process and call, so concurrent writers of one path never share it.
    static func temporaryName(for path: String) -> String {
        "\(directory(of: path))/.\((path as NSString).lastPathComponent).\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp"
    }

    static func directory(of path: String) -> String {
        let directory = (path as NSString).deletingLastPathComponent
        return directory.isEmpty ? "." : directory
    }
}

/// A file written as a stream and published atomically (see `AtomicFile`): `write` as often as needed, then
/// `commit` (optionally under a name decided only at the end, such as the digest of what was written) or
/// `discard`. A writer dropped without either removes its temporary file.
/// Sendable so that a transport's deadline can run the body's task beside a timer; a writer is still used by one
/// task at a time (a download's retries run one after another), so the mutex is never contended.
public final class AtomicFileWriter: Sendable {
    /// The final path, unless `commit(as:)` names another.
    public let path: String
    public let temporaryPath: String
    /// The open temporary file (-1 once committed or discarded) and the bytes written since the last `reset`.
    private let state: Mutex<(fd: Int32, count: Int64)>

    /// Bytes written since the last `reset`.
    public var count: Int64 { state.withLock { $0.count } }

    public init(path: String, mode: mode_t = 0o644) throws {
        self.path = path
        let temporaryPath = AtomicFile.temporaryName(for: path)
        self.temporaryPath = temporaryPath
        let fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw StoreError.io(path: temporaryPath, operation: "create", detail: String(cString: strerror(errno)))
        }
        state = Mutex((fd, 0))
    }

    deinit { discard() }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try state.withLock { state in
            try AtomicFile.writeAll(state.fd, bytes, path: temporaryPath)
            state.count += Int64(bytes.count)
        }
    }

    /// Starts over from an empty file (a download that is retried from the beginning).
    public func reset() throws {
        try state.withLock { state in
            guard ftruncate(state.fd, 0) == 0, lseek(state.fd, 0, SEEK_SET) == 0 else {
                throw StoreError.io(
                    path: temporaryPath, operation: "truncate", detail: String(cString: strerror(errno)))
            }
            state.count = 0
        }
    }

    /// fsync, rename to `final` (default `path`), fsync the directory.
    public func commit(as final: String? = nil) throws {
        let fd = state.withLock { state in
            defer { state.fd = -1 }
            return state.fd
        }
        guard fd >= 0 else { throw StoreError.io(path: path, operation: "commit", detail: "already committed") }
        let synced = fsync(fd) == 0
        let detail = String(cString: strerror(errno))
        close(fd)
        guard synced else {
            unlink(temporaryPath)
            throw StoreError.io(path: temporaryPath, operation: "flush", detail: detail)
        }
        do {
            try AtomicFile.rename(temporaryPath, over: final ?? path)
        } catch {
            unlink(temporaryPath)
            throw error
        }
    }

    public func discard() {
        let fd = state.withLock { state in
            defer { state.fd = -1 }
            return state.fd
        }
        guard fd >= 0 else { return }
        close(fd)
        unlink(temporaryPath)
    }
}
