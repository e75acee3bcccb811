import CArchive
import Foundation
import KilnOCI

/// One entry of a layer as read back: what it is and a digest of its content, enough to compare two layers
/// file by file.
public struct LayerFile: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        case file, directory, symlink, hardlink, other
    }

    /// Normalised path (no leading `./` or `/`, no trailing `/`).
    public var path: String
    public var kind: Kind
    public var size: Int64
    /// Permission bits, including setuid, setgid and sticky.
    public var mode: UInt32
    public var uid: Int64
    public var gid: Int64
    /// The target of a symlink or hard link.
    public var linkTarget: String?
    /// sha256 of a regular file's content.
    public var contentDigest: Digest?
    public var mtime: Int64

    public init(
        path: String, kind: Kind, size: Int64 = 0, mode: UInt32 = 0, uid: Int64 = 0, gid: Int64 = 0,
        linkTarget: String? = nil, contentDigest: Digest? = nil, mtime: Int64 = 0
    ) {
        self.path = path
        self.kind = kind
        self.size = size
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.linkTarget = linkTarget
        self.contentDigest = contentDigest
        self.mtime = mtime
    }

    /// What differs from `other` (same path), as `field: mine → theirs` phrases.
    public func differences(from other: LayerFile) -> [String] {
        var out: [String] = []
        if kind != other.kind { out.append("type \(other.kind.rawValue) → \(kind.rawValue)") }
        if size != other.size { out.append("size \(other.size) → \(size)") }
        if mode != other.mode { out.append("mode \(String(other.mode, radix: 8)) → \(String(mode, radix: 8))") }
        if uid != other.uid || gid != other.gid { out.append("owner \(other.uid):\(other.gid) → \(uid):\(gid)") }
        if linkTarget != other.linkTarget {
            out.append("link \(other.linkTarget ?? "-") → \(linkTarget ?? "-")")
        }
        if contentDigest != other.contentDigest {
            out.append(
                "content \(other.contentDigest.map { String($0.encoded.prefix(12)) } ?? "-") → "
                    + (contentDigest.map { String($0.encoded.prefix(12)) } ?? "-"))
        }
        if mtime != other.mtime { out.append("mtime \(other.mtime) → \(mtime)") }
        return out
    }
}

/// Reads tar archives (plain, gzip or zstd: libarchive detects the filter) entry by entry.
public enum LayerReader {
    /// Every entry of the archive at `path`, in archive order, with each regular file's content hashed.
    public static func files(at path: String) throws -> [LayerFile] {
        guard let archive = archive_read_new() else { throw LayerError.archive(path: path, reason: "out of memory") }
        defer { archive_read_free(archive) }
        archive_read_support_filter_all(archive)
        archive_read_support_format_tar(archive)
        guard archive_read_open_filename(archive, path, 1 << 20) == ARCHIVE_OK else {
            throw error(archive, path)
        }
        var result: [LayerFile] = []
        var entry: OpaquePointer?
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let status = archive_read_next_header(archive, &entry)
            if status == ARCHIVE_EOF { break }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else { throw error(archive, path) }
            let name = archive_entry_pathname_utf8(entry).map { String(cString: $0) } ?? ""
            let type = UInt32(archive_entry_filetype(entry))
            let hardlink = archive_entry_hardlink_utf8(entry).map { String(cString: $0) }
            var file = LayerFile(
                path: normalised(name), kind: .other, size: Int64(archive_entry_size(entry)),
                mode: UInt32(archive_entry_perm(entry)) & 0o7777, uid: Int64(archive_entry_uid(entry)),
                gid: Int64(archive_entry_gid(entry)), mtime: Int64(archive_entry_mtime(entry)))
            if let hardlink {
                file.kind = .hardlink
                file.linkTarget = normalised(hardlink)
            } else {
                switch type & FileType.mask {
                case FileType.regular: file.kind = .file
                case FileType.directory: file.kind = .directory
                case FileType.symlink:
                    file.kind = .symlink
                    file.linkTarget = archive_entry_symlink_utf8(entry).map { String(cString: $0) }
                default: file.kind = .other
                }
            }
            if file.kind == .file {
                var hasher = SHA256()
                while true {
                    let n = archive_read_data(archive, buffer.baseAddress, buffer.count)
                    if n == 0 { break }
                    guard n > 0 else { throw error(archive, path) }
                    hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                }
                file.contentDigest = hasher.finalize()
            } else {
                archive_read_data_skip(archive)
            }
            result.append(file)
        }
        return result
    }

    /// Differences between two layers' entries: one line per path that was added, removed or changed,
    /// sorted by path. Change phrases read `theirs → mine`; `mineLabel`/`theirsLabel` name the two sides.
    public static func compare(
        _ mine: [LayerFile], _ theirs: [LayerFile], mineLabel: String = "rebuilt", theirsLabel: String = "published"
    ) -> [String] {
        let a = Dictionary(mine.map { ($0.path, $0) }, uniquingKeysWith: { _, last in last })
        let b = Dictionary(theirs.map { ($0.path, $0) }, uniquingKeysWith: { _, last in last })
        var lines: [String] = []
        for path in Set(a.keys).union(b.keys).sorted(by: LayerPath.precedes) {
            switch (a[path], b[path]) {
            case (.some, nil): lines.append("+ /\(path) (only in the \(mineLabel) layer)")
            case (nil, .some): lines.append("- /\(path) (only in the \(theirsLabel) layer)")
            case (let x?, let y?):
                let changes = x.differences(from: y)
                if !changes.isEmpty { lines.append("~ /\(path): \(changes.joined(separator: ", "))") }
            default: break
            }
        }
        return lines
    }

    static func normalised(_ name: String) -> String {
        var s = Substring(name)
        while s.hasPrefix("./") { s = s.dropFirst(2) }
        while s.hasPrefix("/") { s = s.dropFirst() }
        while s.hasSuffix("/") { s = s.dropLast() }
        return String(s)
    }

    private static func error(_ archive: OpaquePointer, _ path: String) -> LayerError {
        .archive(path: path, reason: archive_error_string(archive).map { String(cString: $0) } ?? "unreadable archive")
    }
}
