import CZlib
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// libarchive's gzip reader does not check the CRC-32 and length trailer of a gzip member, so a corrupt
/// `.tar.gz` would be unpacked as if it were whole. Input archives are therefore inflated once by zlib first
/// (every member, trailers checked), under the same expansion limit; a sha256 pin proves the bytes are the ones
/// expected, not that the publisher's file was sound.
enum GzipCheck {
    static func verify(path: String, name: String, limit: ExpansionLimit) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw LayerError.unreadableFile(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var stream = z_stream()
        guard inflateInit2_(&stream, 16 + MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw LayerError.archive(path: name, reason: "cannot start zlib")
        }
        defer { inflateEnd(&stream) }
        let size = 1 << 20
        let input = UnsafeMutablePointer<UInt8>.allocate(capacity: size)
        let output = UnsafeMutablePointer<UInt8>.allocate(capacity: size)
        defer {
            input.deallocate()
            output.deallocate()
        }
        var expanded: Int64 = 0
        var compressed: Int64 = 0
        var betweenMembers = false
        reading: while true {
            let n = read(fd, input, size)
            if n < 0 {
                if errno == EINTR { continue }
                throw LayerError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            compressed += Int64(n)
            stream.next_in = input
            stream.avail_in = UInt32(n)
            while stream.avail_in > 0 {
                if betweenMembers {
                    // Another member follows only if it starts with the gzip magic; anything else is padding
                    // that gzip (and libarchive) ignore.
                    guard stream.next_in.pointee == 0x1f else { break reading }
                    betweenMembers = false
                }
                stream.next_out = output
                stream.avail_out = UInt32(size)
                let status = inflate(&stream, Z_NO_FLUSH)
                expanded += Int64(size) - Int64(stream.avail_out)
                try check(expanded: expanded, compressed: compressed, limit: limit, name: name)
                switch status {
                case Z_STREAM_END:
                    inflateReset(&stream)
                    betweenMembers = true
                case Z_OK, Z_BUF_ERROR:
                    continue
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                    throw LayerError.archive(
                        path: name, reason: "corrupt gzip data (\(message)): the file is damaged; fetch it again")
                }
            }
        }
        guard betweenMembers else {
            throw LayerError.archive(path: name, reason: "the gzip data ends early: the file is truncated")
        }
    }

    static func check(expanded: Int64, compressed: Int64, limit: ExpansionLimit, name: String) throws {
        if expanded > limit.maxBytes {
            throw LayerError.archive(path: name, reason: ExpansionLimit.tooLarge(limit.maxBytes))
        }
        if expanded > limit.ratioFloor, expanded / max(compressed, 1) > limit.maxRatio {
            throw LayerError.archive(
                path: name, reason: ExpansionLimit.tooCompressed(limit.maxRatio, expanded: expanded))
        }
    }
}

extension ExpansionLimit {
    static func tooLarge(_ bytes: Int64) -> String {
        "expands to more than \(bytes) bytes, the limit for an archive: refusing it as a likely decompression bomb"
    }

    static func tooCompressed(_ ratio: Int64, expanded: Int64) -> String {
        "expands more than \(ratio) times (\(expanded) bytes so far): refusing it as a likely decompression bomb"
    }
}
