import Foundation

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
// @unchecked: a writer is used by one task at a time (a download's retries run one after another); it is
// Sendable only so that a transport's deadline can run the body's task beside a timer.
public final class AtomicFileWriter: @unchecked Sendable {
    /// The final path, unless `commit(as:)` names another.
    public let path: String
    public let temporaryPath: String
    /// Bytes written since the last `reset`.
    public private(set) var count: Int64 = 0
    private var fd: Int32

    public init(path: String, mode: mode_t = 0o644) throws {
        self.path = path
        temporaryPath = AtomicFile.temporaryName(for: path)
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw StoreError.io(path: temporaryPath, operation: "create", detail: String(cString: strerror(errno)))
        }
    }

    deinit { discard() }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try AtomicFile.writeAll(fd, bytes, path: temporaryPath)
        count += Int64(bytes.count)
    }

    /// Starts over from an empty file (a download that is retried from the beginning).
    public func reset() throws {
        guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0 else {
            throw StoreError.io(path: temporaryPath, operation: "truncate", detail: String(cString: strerror(errno)))
        }
        count = 0
    }

    /// fsync, rename to `final` (default `path`), fsync the directory.
    public func commit(as final: String? = nil) throws {
        guard fd >= 0 else { throw StoreError.io(path: path, operation: "commit", detail: "already committed") }
        let synced = fsync(fd) == 0
        let detail = String(cString: strerror(errno))
        close(fd)
        fd = -1
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
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
        unlink(temporaryPath)
    }
}
