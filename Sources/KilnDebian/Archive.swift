import Foundation
import KilnLayer

/// Compressed Debian indexes, read through KilnLayer's `ArchiveReader`.
enum DebArchive {
    /// Decompresses a whole file of any format libarchive knows a filter for (xz, gzip, zstd, bzip2, none).
    /// Used for Packages indexes, which are already verified against the signed Release.
    static func decompress(path: String) throws -> Data {
        do {
            let reader = try ArchiveReader(path: path, format: .raw, policy: .package)
            guard try reader.next() != nil else { return Data() }
            return try reader.readAll(limit: 1 << 30)
        } catch let error as LayerError {
            throw DebianError.badPackage(path: path, detail: "\(error)")
        }
    }
}
