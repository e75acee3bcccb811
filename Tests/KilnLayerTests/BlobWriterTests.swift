import Foundation
import KilnOCI
import KilnTestSupport
import Testing

@testable import KilnLayer

/// The blob writer's two paths (direct whole buffers plus a buffered tail, and buffered only) write exactly
/// the bytes submitted, in order, and hash them; a blob longer than the flush interval is flushed before
/// its end.
@Suite struct BlobWriterTests {
    /// Feeds `data` the way the layer sink does: whole buffers, then one partly filled last buffer.
    func write(_ data: Data, to path: String, directIO: Bool) throws -> (digest: Digest, earlyFlushes: Int) {
        let writer = try BlobWriter(path: path, directIO: directIO)
        defer { writer.close() }
        // The temporary directory's file system (ext4 on the test machines) takes O_DIRECT.
        #expect(writer.writesDirectly == directIO)
        var offset = 0
        while offset < data.count {
            let buffer = writer.takeBuffer()
            let n = min(BlobWriter.bufferSize, data.count - offset)
            data.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
            try writer.submit(buffer, count: n)
            offset += n
        }
        let digest = try writer.finish()
        return (digest, writer.earlyFlushes)
    }

    @Test(arguments: [true, false])
    func writesAndHashesExactlyTheBytesSubmitted(directIO: Bool) throws {
        let tmp = try TemporaryDirectory("kiln-blob")
        defer { tmp.remove() }
        let size = BlobWriter.bufferSize
        // More whole buffers than the writer has, so buffers are reused and written out of order; then sizes
        // with no tail, only a tail, and nothing at all.
        for (index, count) in [size * (BlobWriter.buffers + 3) + 12_345, 2 * size, 4097, 1, 0].enumerated() {
            var data = Data(count: count)
            data.withUnsafeMutableBytes { (raw: UnsafeMutableRawBufferPointer) in
                var state: UInt64 = 0x9E37_79B9_7F4A_7C15 &+ UInt64(count)
                for i in 0..<count {
                    state ^= state << 13
                    state ^= state >> 7
                    state ^= state << 17
                    raw[i] = UInt8(truncatingIfNeeded: state)
                }
            }
            let path = tmp.path + "/blob\(index)"
            let (digest, earlyFlushes) = try write(data, to: path, directIO: directIO)
            #expect(digest == Digest.sha256(data), "size \(count)")
            // Whole buffers only count once written, so the first flush may come a buffer past the interval.
            if count >= Int(BlobWriter.flushInterval) + size {
                #expect(earlyFlushes >= 1, "size \(count)")
            } else if count < Int(BlobWriter.flushInterval) {
                #expect(earlyFlushes == 0, "size \(count)")
            }
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == data, "size \(count)")
        }
    }
}
