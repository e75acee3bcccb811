import Foundation
import KilnOCI
import KilnTestSupport
import Testing

@testable import KilnLayer

/// The blob writer writes exactly the bytes submitted, in order, and hashes them; a blob longer than the
/// flush interval is flushed before its end.
@Suite struct BlobWriterTests {
    /// Feeds `data` the way the layer sink does: whole buffers, then one partly filled last buffer.
    func write(_ data: Data, to path: String) throws -> (digest: Digest, earlyFlushes: Int) {
        let writer = try BlobWriter(path: path)
        defer { writer.close() }
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

    @Test func writesAndHashesExactlyTheBytesSubmitted() async throws {
        try await withTemporaryDirectory("kiln-blob") { tmp in
            let size = BlobWriter.bufferSize
            // Two flush intervals (more buffers than the writer has, so they are reused), then sizes with no partly
            // filled last buffer, only one, and nothing at all.
            let long = max(2 * Int(BlobWriter.flushInterval), size * (BlobWriter.buffers + 3)) + 12_345
            for (index, count) in [long, 2 * size, 4097, 1, 0].enumerated() {
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
                let (digest, earlyFlushes) = try write(data, to: path)
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
}
