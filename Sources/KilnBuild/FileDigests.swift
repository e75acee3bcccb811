import Foundation
import KilnOCI
import KilnStore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// sha256 of input files, remembered by (size, mtime, ctime, inode) so that an unchanged file is read once
/// per store, not once per build. ctime cannot be set from user space, so a rewritten file always misses.
/// `trustStat: false` (the `--rehash` flag) reads every file again.
public final class FileDigests: Sendable {
    public struct Stamp: Codable, Hashable, Sendable {
        var size: Int64
        var mtimeNanos: Int64
        var ctimeNanos: Int64
        var inode: UInt64
    }

    struct Entry: Codable {
        var stamp: Stamp
        var digest: Digest
    }

    private let path: String
    private let trustStat: Bool
    private struct Table {
        var entries: [String: Entry]
        /// Paths hashed by this process: trusted on their stamp even when `trustStat` is off.
        var hashedNow: Set<String> = []
        var dirty = false
        var bytesHashed: Int64 = 0
    }

    private let table: Mutex<Table>

    /// Bytes read to hash files in this run (what a no-op rebuild should keep near zero).
    public var bytesHashed: Int64 { table.withLock { $0.bytesHashed } }

    public init(layout: OCILayout, trustStat: Bool = true) {
        path = layout.privateDirectory + "/cache/file-digests.tsv"
        self.trustStat = trustStat
        table = Mutex(Table(entries: FileManager.default.contents(atPath: path).map(Self.decode) ?? [:]))
    }

    /// One line per file: `size mtime ctime inode hex path`, tab-separated, the path last. A plain text table
    /// rather than JSON because decoding JSON dominated the no-op rebuild of thousands of files. Lines that do
    /// not parse are skipped: the cache only saves work, a lost entry costs one re-hash.
    static func decode(_ data: Data) -> [String: Entry] {
        var result: [String: Entry] = [:]
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            for line in raw.split(separator: UInt8(ascii: "\n")) {
                let fields = line.split(separator: UInt8(ascii: "\t"), maxSplits: 5, omittingEmptySubsequences: false)
                guard fields.count == 6,
                    let size = Int64(String(decoding: fields[0], as: UTF8.self)),
                    let mtime = Int64(String(decoding: fields[1], as: UTF8.self)),
                    let ctime = Int64(String(decoding: fields[2], as: UTF8.self)),
                    let inode = UInt64(String(decoding: fields[3], as: UTF8.self)),
                    let digest = try? Digest(sha256Hex: String(decoding: fields[4], as: UTF8.self))
                else { continue }
                result[String(decoding: fields[5], as: UTF8.self)] = Entry(
                    stamp: Stamp(size: size, mtimeNanos: mtime, ctimeNanos: ctime, inode: inode), digest: digest)
            }
        }
        return result
    }

    static func encode(_ entries: [String: Entry]) -> Data {
        var text = ""
        for (path, entry) in entries.sorted(by: { $0.key < $1.key }) where !path.utf8.contains(UInt8(ascii: "\n")) {
            let s = entry.stamp
            text += "\(s.size)\t\(s.mtimeNanos)\t\(s.ctimeNanos)\t\(s.inode)\t\(entry.digest.encoded)\t\(path)\n"
        }
        return Data(text.utf8)
    }

    /// Remembers a digest known without reading the file (content-addressed cache files, named by their
    /// verified digest), so keying a layer never reads them.
    public func record(_ filePath: String, digest: Digest) {
        guard let stamp = try? Self.stamp(filePath) else { return }
        table.withLock { table in
            if table.entries[filePath]?.stamp != stamp || table.entries[filePath]?.digest != digest {
                table.entries[filePath] = Entry(stamp: stamp, digest: digest)
                table.dirty = true
            }
        }
    }

    /// Whether a digest of `filePath` was ever recorded, whatever its stamp.
    public func knows(_ filePath: String) -> Bool {
        table.withLock { $0.entries[filePath] != nil }
    }

    /// The recorded digest of `filePath` if it can be used without reading the file.
    public func current(_ filePath: String) throws -> Digest? {
        try current(filePath, stamp: Self.stamp(filePath))
    }

    /// The recorded digest of `filePath` if it was hashed at `stamp` (a stamp just taken) and may be trusted.
    public func current(_ filePath: String, stamp: Stamp) -> Digest? {
        table.withLock { table in
            guard let cached = table.entries[filePath], cached.stamp == stamp,
                trustStat || table.hashedNow.contains(filePath)
            else { return nil }
            return cached.digest
        }
    }

    /// The sha256 of the file at `path` (absolute), reading it only if it changed since it was last hashed.
    public func digest(ofFileAt filePath: String) throws -> Digest {
        let stamp = try Self.stamp(filePath)
        if let digest = current(filePath, stamp: stamp) { return digest }
        let digest = try Self.hash(filePath)
        record(filePath, digest: digest, hashedAt: stamp)
        return digest
    }

    /// Records a digest this process computed from the file's bytes, with the stamp taken before reading them
    /// (a file rewritten during the read then has another stamp, and is hashed again next time).
    public func record(_ filePath: String, digest: Digest, hashedAt stamp: Stamp) {
        table.withLock { table in
            table.entries[filePath] = Entry(stamp: stamp, digest: digest)
            table.hashedNow.insert(filePath)
            table.bytesHashed += stamp.size
            table.dirty = true
        }
    }

    /// Persists what was learnt (atomic replace; a lost race only costs a re-hash later).
    public func save() {
        table.withLock { table in
            guard table.dirty else { return }
            let data = Self.encode(table.entries)
            try? FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try? AtomicFile.write(data, to: path)
            table.dirty = false
        }
    }

    public static func stamp(_ path: String) throws -> Stamp {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw BuildError.unreadableInput(path: path, reason: String(cString: strerror(errno)))
        }
        return Stamp(
            size: Int64(info.st_size),
            mtimeNanos: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
            ctimeNanos: Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec),
            inode: UInt64(info.st_ino))
    }

    /// Streams a file through SHA-256 in 1 MiB reads.
    public static func hash(_ path: String) throws -> Digest {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BuildError.unreadableInput(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var hasher = SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw BuildError.unreadableInput(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        return hasher.finalize()
    }
}
