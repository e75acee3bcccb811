import CArchive
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One member of an archive read by `ArchiveReader`.
public struct ArchiveMember: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable {
        case file, directory, symlink, hardlink
    }

    /// Normalised relative path (no leading `/`, no `.` or `..` components).
    public var path: String
    public var kind: Kind
    public var mode: UInt32
    public var size: Int64
    /// Symlink target as stored, or the normalised path a hard link points at.
    public var target: String?

    public init(path: String, kind: Kind, mode: UInt32, size: Int64, target: String? = nil) {
        self.path = path
        self.kind = kind
        self.mode = mode
        self.size = size
        self.target = target
    }
}

/// Reads `.zip`, `.tar`, `.tar.gz`, `.tar.xz`, `.tar.zst` and `.deb`-style `ar` archives with libarchive, one
/// member at a time, streaming file content; nothing is written outside what the caller decides.
///
/// Every member path is checked before the caller sees it: absolute paths, `..` components and symlinks whose
/// target leaves the archive root are refused (`LayerError.pathEscapesRoot`), so a hostile archive cannot
/// place or point files outside the destination.
public final class ArchiveReader {
    private let archive: OpaquePointer
    private let path: String
    private var entry: OpaquePointer?

    public init(path: String) throws {
        guard let archive = archive_read_new() else { throw LayerError.archive(path: path, reason: "out of memory") }
        self.archive = archive
        self.path = path
        archive_read_support_format_all(archive)
        archive_read_support_filter_all(archive)
        guard archive_read_open_filename(archive, path, 1 << 16) == ARCHIVE_OK else {
            // Every stored property is set, so deinit runs and frees the handle.
            let reason = Self.message(archive)
            throw LayerError.archive(path: path, reason: "not a readable archive (\(reason))")
        }
    }

    deinit { archive_read_free(archive) }

    /// The next member, or nil at the end. Its content is read with `readContent` before the next call.
    public func next() throws -> ArchiveMember? {
        var entry: OpaquePointer?
        let status = archive_read_next_header(archive, &entry)
        if status == ARCHIVE_EOF { return nil }
        guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else {
            throw LayerError.archive(path: path, reason: Self.message(archive))
        }
        self.entry = entry
        guard let raw = archive_entry_pathname_utf8(entry) ?? archive_entry_pathname(entry) else {
            throw LayerError.archive(path: path, reason: "a member has no readable name")
        }
        let name = String(cString: raw)
        let member = try Self.member(
            name: name, type: archive_entry_filetype(entry), mode: UInt32(archive_entry_perm(entry)),
            size: archive_entry_size(entry),
            symlink: archive_entry_symlink_utf8(entry).map { String(cString: $0) },
            hardlink: archive_entry_hardlink_utf8(entry).map { String(cString: $0) })
        return member
    }

    /// Streams the current member's content to `body`, in chunks.
    public func readContent(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var buffer: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        while true {
            let status = archive_read_data_block(archive, &buffer, &size, &offset)
            if status == ARCHIVE_EOF { return }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN else {
                throw LayerError.archive(path: path, reason: Self.message(archive))
            }
            if size > 0 { try body(UnsafeRawBufferPointer(start: buffer, count: size)) }
        }
    }

    /// Checks a member's name and link target; see the type's documentation.
    static func member(
        name: String, type: mode_t, mode: UInt32, size: Int64, symlink: String?, hardlink: String?
    ) throws -> ArchiveMember {
        if name.hasPrefix("/") { throw LayerError.pathEscapesRoot(name) }
        let path = try LayerPath.normalise(name)
        guard !path.isEmpty else {
            return ArchiveMember(path: "", kind: .directory, mode: mode & 0o7777, size: 0, target: nil)
        }
        switch type & S_IFMT {
        case S_IFDIR:
            return ArchiveMember(path: path, kind: .directory, mode: mode & 0o7777, size: 0, target: nil)
        case S_IFLNK:
            let target = symlink ?? ""
            guard symlinkStaysInside(path: path, target: target) else {
                throw LayerError.archive(
                    path: name, reason: "symlink to '\(target)' points outside the archive; refusing the archive")
            }
            return ArchiveMember(path: path, kind: .symlink, mode: 0o777, size: 0, target: target)
        default:
            if let hardlink, !hardlink.isEmpty {
                if hardlink.hasPrefix("/") { throw LayerError.pathEscapesRoot(hardlink) }
                return ArchiveMember(
                    path: path, kind: .hardlink, mode: mode & 0o7777, size: 0,
                    target: try LayerPath.normalise(hardlink))
            }
            guard type & S_IFMT == S_IFREG || type == 0 else {
                throw LayerError.archive(
                    path: name, reason: "device, FIFO and socket members are not allowed in an input archive")
            }
            return ArchiveMember(path: path, kind: .file, mode: mode & 0o7777, size: size, target: nil)
        }
    }

    /// A relative target resolved against the link's directory must stay at or below the root; an absolute
    /// target always points outside what the archive provides.
    static func symlinkStaysInside(path: String, target: String) -> Bool {
        if target.isEmpty || target.hasPrefix("/") { return false }
        var depth = path.split(separator: "/").count - 1
        for part in target.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..":
                depth -= 1
                if depth < 0 { return false }
            default: depth += 1
            }
        }
        return true
    }

    private static func message(_ archive: OpaquePointer) -> String {
        archive_error_string(archive).map { String(cString: $0) } ?? "unknown libarchive error"
    }
}
