import CArchive
import Foundation
import KilnLayer

/// Small libarchive helpers for reading Debian files: compressed indexes and .deb members.
enum DebArchive {
    /// Decompresses a whole file of any format libarchive knows a filter for (xz, gzip, zstd, bzip2, none).
    /// Used for Packages indexes, which are already verified against the signed Release.
    static func decompress(path: String) throws -> Data {
        guard let archive = archive_read_new() else {
            throw DebianError.badPackage(path: path, detail: "out of memory")
        }
        defer { archive_read_free(archive) }
        archive_read_support_filter_all(archive)
        archive_read_support_format_raw(archive)
        guard archive_read_open_filename(archive, path, 1 << 16) == ARCHIVE_OK else {
            throw DebianError.badPackage(path: path, detail: errorString(archive))
        }
        var entry: OpaquePointer?
        guard archive_read_next_header(archive, &entry) == ARCHIVE_OK else {
            throw DebianError.badPackage(path: path, detail: errorString(archive))
        }
        return try readAll(archive, path: path)
    }

    static func readAll(_ archive: OpaquePointer, path: String) throws -> Data {
        var data = Data()
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = archive_read_data(archive, buffer, 1 << 16)
            if n < 0 { throw DebianError.badPackage(path: path, detail: errorString(archive)) }
            if n == 0 { break }
            data.append(buffer.assumingMemoryBound(to: UInt8.self), count: n)
        }
        return data
    }

    static func errorString(_ archive: OpaquePointer) -> String {
        archive_error_string(archive).map { String(cString: $0) } ?? "unreadable archive"
    }
}
