import CArchive
import Foundation
import KilnLayer

#if canImport(Glibc)
    import Glibc
#endif

/// A .deb taken apart: its control stanza and its data as layer entries whose file contents live on disk.
public struct UnpackedPackage: Sendable {
    public var control: Stanza
    public var entries: [LayerEntry]
}

/// Reads .deb files with libarchive (the outer `ar`, then `control.tar.*` and `data.tar.*`) into
/// `<cache>/unpacked/<sha256>/`: `root/` holds the regular files, `entries.json` every path with its type,
/// mode and owner as the archive gives them. Done once per .deb (by digest); maintainer scripts never run.
public enum DebUnpacker {
    struct Record: Codable {
        var path: String
        /// `dir`, `file`, `symlink` or `hardlink`.
        var type: String
        var target: String?
        var mode: UInt32
        var uid: Int
        var gid: Int
    }

    struct Manifest: Codable {
        var control: String
        var entries: [Record]
    }

    /// Packages already read in this process, by unpacked directory (content-addressed, never changed). A
    /// build asks for each package once per layer and once more per image's SBOM (every Komodo image lists
    /// debian-runtime's set), and decoding entries.json each time was most of a no-op rebuild.
    private final class Memo: @unchecked Sendable {
        private let lock = NSLock()
        private var packages: [String: UnpackedPackage] = [:]

        subscript(directory: String) -> UnpackedPackage? {
            get { lock.withLock { packages[directory] } }
            set { lock.withLock { packages[directory] = newValue } }
        }
    }
    private static let memo = Memo()

    public static func unpack(deb: String, sha256: String, cache: DownloadCache) throws -> UnpackedPackage {
        let directory = cache.root + "/unpacked/" + sha256
        if let known = memo[directory] { return known }
        let unpacked = try unpackOnce(deb: deb, directory: directory, cache: cache)
        memo[directory] = unpacked
        return unpacked
    }

    private static func unpackOnce(deb: String, directory: String, cache: DownloadCache) throws -> UnpackedPackage {
        if let data = FileManager.default.contents(atPath: directory + "/entries.json"),
            let manifest = try? JSONDecoder().decode(Manifest.self, from: data)
        {
            return package(manifest, root: directory + "/root")
        }
        try FileManager.default.createDirectory(atPath: cache.root + "/unpacked", withIntermediateDirectories: true)
        let staging = cache.root + "/unpacked/.tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: staging) }
        try FileManager.default.createDirectory(atPath: staging + "/root", withIntermediateDirectories: true)
        let manifest = try extract(deb: deb, into: staging)
        let json = try JSONEncoder().encode(manifest)
        try write(json, to: staging + "/entries.json")
        if rename(staging, directory) != 0 {
            // Another build unpacked the same .deb first: its copy is identical.
            guard errno == EEXIST || errno == ENOTEMPTY else {
                throw DebianError.badPackage(path: directory, detail: String(cString: strerror(errno)))
            }
        }
        syncDirectory(cache.root + "/unpacked")
        return package(manifest, root: directory + "/root")
    }

    static func package(_ manifest: Manifest, root: String) -> UnpackedPackage {
        let entries = manifest.entries.map { record -> LayerEntry in
            let kind: LayerEntry.Kind
            switch record.type {
            case "dir": kind = .directory
            case "symlink": kind = .symlink(target: record.target ?? "")
            case "hardlink": kind = .hardlink(target: "/" + (record.target ?? ""))
            default: kind = .file(.path(root + "/" + record.path))
            }
            return LayerEntry(path: "/" + record.path, kind: kind, mode: record.mode, uid: record.uid, gid: record.gid)
        }
        return UnpackedPackage(control: Control.parse(Data(manifest.control.utf8)).first ?? Stanza(), entries: entries)
    }

    /// The outer ar archive: `debian-binary` (format 2.x), `control.tar[.gz|.xz|.zst]`, `data.tar[.*]`.
    static func extract(deb: String, into staging: String) throws -> Manifest {
        guard let archive = archive_read_new() else { throw DebianError.badPackage(path: deb, detail: "out of memory") }
        defer { archive_read_free(archive) }
        archive_read_support_format_ar(archive)
        guard archive_read_open_filename(archive, deb, 1 << 16) == ARCHIVE_OK else {
            throw DebianError.badPackage(path: deb, detail: DebArchive.errorString(archive))
        }
        var control: String?
        var records: [Record]?
        var format: String?
        var entry: OpaquePointer?
        while true {
            let status = archive_read_next_header(archive, &entry)
            if status == ARCHIVE_EOF { break }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else {
                throw DebianError.badPackage(path: deb, detail: DebArchive.errorString(archive))
            }
            let name = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
            if name == "debian-binary" {
                format = String(decoding: try DebArchive.readAll(archive, path: deb), as: UTF8.self)
            } else if name.hasPrefix("control.tar") {
                control = try controlFile(try DebArchive.readAll(archive, path: deb), deb: deb)
            } else if name.hasPrefix("data.tar") {
                // Streamed to a file: data members can be hundreds of megabytes.
                let temp = staging + "/" + name
                try copyData(archive, to: temp, deb: deb)
                records = try extractData(temp, root: staging + "/root", deb: deb)
                unlink(temp)
            }
        }
        guard let format, format.hasPrefix("2.") else {
            throw DebianError.badPackage(path: deb, detail: "not a Debian binary package (no debian-binary 2.x member)")
        }
        guard let control, let records else {
            throw DebianError.badPackage(path: deb, detail: "the package has no control or data member")
        }
        return Manifest(control: control, entries: records)
    }

    static func controlFile(_ data: Data, deb: String) throws -> String {
        guard let archive = archive_read_new() else { throw DebianError.badPackage(path: deb, detail: "out of memory") }
        defer { archive_read_free(archive) }
        archive_read_support_filter_all(archive)
        archive_read_support_format_tar(archive)
        return try data.withUnsafeBytes { bytes -> String in
            guard archive_read_open_memory(archive, bytes.baseAddress, bytes.count) == ARCHIVE_OK else {
                throw DebianError.badPackage(path: deb, detail: DebArchive.errorString(archive))
            }
            var entry: OpaquePointer?
            while archive_read_next_header(archive, &entry) == ARCHIVE_OK, let entry {
                let name = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
                if name == "./control" || name == "control" {
                    return String(decoding: try DebArchive.readAll(archive, path: deb), as: UTF8.self)
                }
            }
            throw DebianError.badPackage(path: deb, detail: "control.tar has no control file")
        }
    }

    static func copyData(_ archive: OpaquePointer, to path: String, deb: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DebianError.badPackage(path: path, detail: String(cString: strerror(errno))) }
        defer { close(fd) }
        try pump(archive, fd: fd, path: path, deb: deb)
    }

    /// Copies the current archive member's data to `fd`, 1 MiB at a time.
    static func pump(_ archive: OpaquePointer, fd: Int32, path: String, deb: String) throws {
        let size = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = archive_read_data(archive, buffer, size)
            if n < 0 { throw DebianError.badPackage(path: deb, detail: DebArchive.errorString(archive)) }
            if n == 0 { return }
            var offset = 0
            while offset < n {
                let written = Glibc.write(fd, buffer + offset, n - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw DebianError.badPackage(path: path, detail: String(cString: strerror(errno)))
                }
                offset += written
            }
        }
    }

    /// The data tar into `root`: regular files are written (never through a symlink: only files and
    /// directories are created there), everything is recorded. Paths are normalised like every layer's;
    /// `..` anywhere is refused, so nothing can land outside `root` or outside the image.
    static func extractData(_ tar: String, root: String, deb: String) throws -> [Record] {
        guard let archive = archive_read_new() else { throw DebianError.badPackage(path: deb, detail: "out of memory") }
        defer { archive_read_free(archive) }
        archive_read_support_filter_all(archive)
        archive_read_support_format_tar(archive)
        guard archive_read_open_filename(archive, tar, 1 << 16) == ARCHIVE_OK else {
            throw DebianError.badPackage(path: deb, detail: DebArchive.errorString(archive))
        }
        var records: [Record] = []
        var seen: Set<String> = []
        var entry: OpaquePointer?
        while true {
            let status = archive_read_next_header(archive, &entry)
            if status == ARCHIVE_EOF { break }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else {
                throw DebianError.badPackage(path: deb, detail: DebArchive.errorString(archive))
            }
            let raw = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
            let path: String
            do {
                path = try LayerPath.normalise(raw)
            } catch {
                throw DebianError.badPackage(path: deb, detail: "member '\(raw)': \(error)")
            }
            if path.isEmpty { continue }
            guard seen.insert(path).inserted else {
                throw DebianError.badPackage(path: deb, detail: "member '\(raw)' appears twice")
            }
            let mode = UInt32(archive_entry_perm(entry)) & 0o7777
            let uid = Int(archive_entry_uid(entry))
            let gid = Int(archive_entry_gid(entry))
            if let link = archive_entry_hardlink(entry) {
                let target: String
                do {
                    target = try LayerPath.normalise(String(cString: link))
                } catch {
                    throw DebianError.badPackage(path: deb, detail: "hard link '\(raw)': \(error)")
                }
                records.append(Record(path: path, type: "hardlink", target: target, mode: mode, uid: uid, gid: gid))
                continue
            }
            switch UInt32(archive_entry_filetype(entry)) {
            case 0o040000:
                records.append(Record(path: path, type: "dir", target: nil, mode: mode, uid: uid, gid: gid))
            case 0o120000:
                let target = archive_entry_symlink(entry).map { String(cString: $0) } ?? ""
                records.append(Record(path: path, type: "symlink", target: target, mode: 0o777, uid: uid, gid: gid))
            case 0o100000:
                let file = root + "/" + path
                try FileManager.default.createDirectory(
                    atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
                guard fd >= 0 else {
                    throw DebianError.badPackage(path: file, detail: String(cString: strerror(errno)))
                }
                defer { close(fd) }
                try pump(archive, fd: fd, path: file, deb: deb)
                guard fsync(fd) == 0 else {
                    throw DebianError.badPackage(path: file, detail: String(cString: strerror(errno)))
                }
                records.append(Record(path: path, type: "file", target: nil, mode: mode, uid: uid, gid: gid))
            default:
                // Device nodes and FIFOs have no place in a Debian package's data (dpkg-deb refuses to build
                // them into well-formed packages); a package carrying one is refused, not silently trimmed.
                throw DebianError.badPackage(path: deb, detail: "member '\(raw)' is a device or FIFO")
            }
        }
        return records
    }

    static func write(_ data: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DebianError.badPackage(path: path, detail: String(cString: strerror(errno))) }
        defer { close(fd) }
        try data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw DebianError.badPackage(path: path, detail: String(cString: strerror(errno)))
                }
                offset += n
            }
        }
        guard fsync(fd) == 0 else { throw DebianError.badPackage(path: path, detail: String(cString: strerror(errno))) }
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}
