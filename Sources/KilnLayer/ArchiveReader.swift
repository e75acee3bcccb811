import CArchive
import Foundation
import KilnOCI
import KilnStore

#if canImport(Glibc)
    import Glibc
#endif

/// The one libarchive reader: input archives, `.deb`s and their members, image layers, compressed indexes;
/// from a file or from memory; one entry at a time, content streamed. Model: umoci's `tar_extract.go`.
///
/// Every entry is checked before the caller sees it (see `ArchivePolicy`), and every byte of content counts
/// against an `ExpansionLimit`, so a hostile archive can neither place or point files outside the
/// destination nor fill the disk. Content is always drained through libarchive rather than skipped, so a
/// member whose CRC is wrong is an error even when the caller did not want its bytes.
public final class ArchiveReader {
    public enum Format: Sendable {
        /// Zip (read through its central directory, so a cut-off zip is refused), else tar, cpio or ar, each
        /// under any compression libarchive knows.
        case any
        /// tar under any compression (layers, a `.deb`'s members).
        case tar
        /// ar (the outer `.deb`).
        case ar
        /// One compressed stream, no archive (Packages indexes).
        case raw
    }

    /// The archive's name in errors.
    public let name: String
    public let policy: ArchivePolicy
    public let limit: ExpansionLimit
    private let archive: OpaquePointer
    private var memory: UnsafeMutableRawBufferPointer?
    private let locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", nil)
    private var current: ArchiveEntry?
    private var drained = true
    /// Kinds of the paths seen so far, to name a file that is later used as a directory.
    private var kinds: [String: ArchiveEntry.Kind] = [:]

    /// `name` (default: `path`) is what errors call the archive.
    public convenience init(
        path: String, name: String? = nil, format: Format = .any, policy: ArchivePolicy = .input,
        limit: ExpansionLimit = .none
    ) throws {
        let magic = Self.magic(path)
        if format == .any && magic.starts(with: [0x1f, 0x8b]) {
            try GzipCheck.verify(path: path, name: name ?? path, limit: limit)
        }
        try self.init(name: name ?? path, format: format, policy: policy, limit: limit, magic: magic) {
            archive in
            archive_read_open_filename(archive, path, 1 << 16)
        }
    }

    /// Reads `data` (copied, so the caller's buffer may go away).
    public convenience init(
        data: Data, name: String, format: Format = .any, policy: ArchivePolicy = .input,
        limit: ExpansionLimit = .none
    ) throws {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(data.count, 1), alignment: 16)
        data.copyBytes(to: copy)
        try self.init(name: name, format: format, policy: policy, limit: limit, magic: Array(data.prefix(4))) {
            archive in archive_read_open_memory(archive, copy.baseAddress, data.count)
        }
        memory = copy
    }

    /// Reads a stored blob through KilnStore's `VerifyingReader`: its digest is checked as the bytes stream
    /// past, and the end of the file is read (and the digest checked) when the archive ends.
    public convenience init(
        blob path: String, expected: Digest, name: String? = nil, format: Format = .tar, policy: ArchivePolicy = .layer
    ) throws {
        let source = BlobSource(try VerifyingReader(path: path, expected: expected))
        try self.init(name: name ?? path, format: format, policy: policy, limit: .none, magic: []) { archive in
            archive_read_open(
                archive, Unmanaged.passUnretained(source).toOpaque(), nil,
                { _, client, buffer in
                    Unmanaged<BlobSource>.fromOpaque(client!).takeUnretainedValue().next(buffer!)
                }, nil)
        }
        self.source = source
    }

    private init(
        name: String, format: Format, policy: ArchivePolicy, limit: ExpansionLimit, magic: [UInt8],
        open: (OpaquePointer) -> Int32
    ) throws {
        guard let archive = archive_read_new() else { throw LayerError.archive(path: name, reason: "out of memory") }
        self.archive = archive
        self.name = name
        self.policy = policy
        self.limit = limit
        switch format {
        case .any where magic.starts(with: [0x50, 0x4b]):
            // The seekable reader trusts the central directory (modes, sizes, CRCs); the streaming one would
            // take a zip whose directory was cut off.
            archive_read_support_format_zip_seekable(archive)
        case .any:
            archive_read_support_filter_all(archive)
            archive_read_support_format_tar(archive)
            archive_read_support_format_cpio(archive)
            archive_read_support_format_ar(archive)
        case .tar:
            archive_read_support_filter_all(archive)
            archive_read_support_format_tar(archive)
        case .ar:
            archive_read_support_format_ar(archive)
        case .raw:
            archive_read_support_filter_all(archive)
            archive_read_support_format_raw(archive)
        }
        guard open(archive) == ARCHIVE_OK else {
            if format == .any && magic.starts(with: [0x50, 0x4b]) {
                throw LayerError.archive(
                    path: name,
                    reason: "a zip whose central directory is missing or damaged (a truncated download?): refusing it")
            }
            throw LayerError.archive(path: name, reason: "not a readable archive (\(Self.message(archive)))")
        }
    }

    private var source: BlobSource?

    /// The error to report for a failed libarchive call: the blob's own (a digest mismatch) when there is one.
    private func failure(_ reason: @autoclosure () -> String) -> Error {
        source?.error ?? LayerError.archive(path: name, reason: reason())
    }

    deinit {
        archive_read_free(archive)
        memory?.deallocate()
        if let locale { freelocale(locale) }
    }

    /// The next entry (checked), or nil at the end. The previous entry's unread content is drained first.
    public func next() throws -> ArchiveEntry? {
        if !drained { try readContent { _ in } }
        var entry: OpaquePointer?
        // libarchive converts names through the thread's locale; in the C locale a UTF-8 name cannot be
        // converted. Under C.UTF-8 names arrive as the bytes the archive holds, and are checked here.
        let previous = locale.map { uselocale($0) }
        defer { if let previous { uselocale(previous) } }
        let status = archive_read_next_header(archive, &entry)
        if status == ARCHIVE_EOF {
            // The archive can end before its file does (tar's end blocks, a gzip trailer): read the rest so a
            // blob's digest is checked over every byte.
            try source?.reader.forEachChunk { _ in }
            return nil
        }
        guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else {
            throw failure(Self.message(archive))
        }
        try checkExpansion()
        let raw = try Self.name(archive_entry_pathname(entry), archive: name)
        let symlink = try archive_entry_symlink(entry).map { try Self.name($0, archive: name) }
        let hardlink = try archive_entry_hardlink(entry).map { try Self.name($0, archive: name) }
        var member = try ArchiveEntryCheck(policy: policy, archive: name).entry(
            name: raw, type: UInt32(archive_entry_filetype(entry)), mode: UInt32(archive_entry_perm(entry)),
            size: archive_entry_size(entry), symlink: symlink, hardlink: hardlink)
        member.uid = archive_entry_uid(entry)
        member.gid = archive_entry_gid(entry)
        member.mtime = Int64(archive_entry_mtime(entry))
        try checkParents(member, raw: raw)
        current = member
        drained = member.kind != .file
        return member
    }

    /// Streams the current entry's content to `body`, in chunks, counting it against the expansion limit.
    public func readContent(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        defer { drained = true }
        var buffer: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        while true {
            let status = archive_read_data_block(archive, &buffer, &size, &offset)
            if status == ARCHIVE_EOF { return }
            // A warning while reading content is about the content (libarchive reports a zip member's bad CRC
            // as ARCHIVE_WARN): refused like an error.
            guard status == ARCHIVE_OK else {
                throw failure("member '\(current?.path ?? "")': \(Self.message(archive))")
            }
            try checkExpansion()
            if size > 0 { try body(UnsafeRawBufferPointer(start: buffer, count: size)) }
        }
    }

    /// The current entry's whole content, refusing more than `limit` bytes (control files, small members).
    public func readAll(limit: Int = 64 << 20) throws -> Data {
        var data = Data()
        try readContent { chunk in
            guard data.count + chunk.count <= limit else {
                throw LayerError.archive(
                    path: name, reason: "member '\(current?.path ?? "")' is larger than \(limit) bytes")
            }
            data.append(contentsOf: chunk)
        }
        return data
    }

    /// Bytes of expanded content read so far (after decompression, before the archive format).
    public var expandedBytes: Int64 { archive_filter_bytes(archive, 0) }

    private func checkExpansion() throws {
        let expanded = archive_filter_bytes(archive, 0)
        let compressed = max(archive_filter_bytes(archive, -1), 1)
        if expanded > limit.maxBytes {
            throw LayerError.archive(path: name, reason: ExpansionLimit.tooLarge(limit.maxBytes))
        }
        if expanded > limit.ratioFloor, expanded / compressed > limit.maxRatio {
            throw LayerError.archive(
                path: name, reason: ExpansionLimit.tooCompressed(limit.maxRatio, expanded: expanded))
        }
    }

    /// A file, link or device used as a parent directory of a later entry is an error naming both.
    private func checkParents(_ member: ArchiveEntry, raw: String) throws {
        var parent = Substring(member.path)
        while let slash = parent.lastIndex(of: "/") {
            parent = parent[..<slash]
            if let kind = kinds[String(parent)] {
                guard kind == .directory else {
                    throw LayerError.archive(
                        path: name,
                        reason:
                            "member '\(raw)' is inside '\(parent)', which the archive has as a \(kind.rawValue), not a directory"
                    )
                }
                break
            }
        }
        if let seen = kinds[member.path], policy != .layer, seen != .directory || member.kind != .directory {
            // A repeated directory only restates attributes; any other repeat would make the result depend on
            // which copy wins (`tar x` keeps the last, Kiln used to keep the first): refused, naming both.
            throw LayerError.archive(
                path: name,
                reason:
                    "member '\(raw)' appears twice (as a \(seen.rawValue), then as a \(member.kind.rawValue)): keep one of them"
            )
        }
        kinds[member.path] = member.kind
    }

    /// A name as UTF-8, or an error showing the raw bytes escaped (never replaced with U+FFFD: two names
    /// would collide).
    static func name(_ raw: UnsafePointer<CChar>?, archive: String) throws -> String {
        guard let raw else { throw LayerError.archive(path: archive, reason: "a member has no readable name") }
        let bytes = UnsafeBufferPointer(
            start: UnsafeRawPointer(raw).assumingMemoryBound(to: UInt8.self), count: strlen(raw))
        if let string = String(validating: bytes, as: UTF8.self) { return string }
        let escaped = bytes.map { $0 >= 0x20 && $0 < 0x7f ? String(UnicodeScalar($0)) : String(format: "\\x%02x", $0) }
        throw LayerError.archive(
            path: archive, reason: "member name '\(escaped.joined())' is not UTF-8: rename it in the archive")
    }

    static func magic(_ path: String) -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        return Array((try? handle.read(upToCount: 4)) ?? Data())
    }

    static func message(_ archive: OpaquePointer) -> String {
        archive_error_string(archive).map { String(cString: $0) } ?? "unknown libarchive error"
    }
}

/// libarchive's read callback over a `VerifyingReader`; a failure (a digest mismatch) is kept for the caller.
final class BlobSource {
    let reader: VerifyingReader
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    var error: Error?

    init(_ reader: VerifyingReader) { self.reader = reader }

    deinit { buffer.deallocate() }

    func next(_ out: UnsafeMutablePointer<UnsafeRawPointer?>) -> Int {
        do {
            let n = try reader.read(into: buffer)
            out.pointee = UnsafeRawPointer(buffer.baseAddress)
            return n
        } catch {
            self.error = error
            return -1
        }
    }
}
