import Foundation
import KilnOCI
import KilnTestSupport
import Testing

@testable import KilnLayer

/// The stored-or-deflated decision per chunk: random bytes are stored (deflate would only spend time),
/// anything deflate can shrink is deflated.
@Suite struct ParallelGzipTests {
    func random(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state >> 24)
        }
    }

    func looksCompressed(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { ParallelGzip.looksCompressed($0) }
    }

    @Test func randomChunksAreStoredOthersDeflated() {
        let size = ParallelGzip.chunkSize
        let text = Array(String(repeating: "komodod -ac_name=KMD -ac_supply=100000000\n", count: 30_000).utf8)
        let randomChunk = looksCompressed(random(size, seed: 1))
        let zeros = looksCompressed([UInt8](repeating: 0, count: size))
        let textChunk = looksCompressed(Array(text.prefix(size)))
        // Half random, half text: deflate still saves a third, so the chunk is deflated.
        let half = looksCompressed(random(size / 2, seed: 3) + text.prefix(size / 2))
        // Random bytes with text only where the sample does not look (past the first quarter of each 4 KiB):
        // judged by the sample, so stored. That is the bargain: a quarter of the cycles, and a chunk built to
        // fool the sample is merely left uncompressed, still correct.
        var fooled = random(size, seed: 4)
        for block in stride(from: 0, to: size, by: ParallelGzip.sampleStride) {
            for i in (block + ParallelGzip.sampleLength)..<(block + ParallelGzip.sampleStride) { fooled[i] = 0x20 }
        }
        let fooledChunk = looksCompressed(fooled)
        // Too short to judge: deflated.
        let short = looksCompressed(random(4095, seed: 5))
        #expect(randomChunk)
        #expect(!zeros)
        #expect(!textChunk)
        #expect(!half)
        #expect(fooledChunk)
        #expect(!short)
    }

    @Test func randomDataCostsOnlyFramingBytes() async throws {
        let input = Data(random(5 * ParallelGzip.chunkSize + 777, seed: 5))
        let gzip = try ParallelGzip(threads: 2)
        var output = Data()
        try input.withUnsafeBytes { bytes in
            try gzip.compress(bytes) { output.append(contentsOf: $0) }
            try gzip.finish { output.append(contentsOf: $0) }
        }
        // Stored blocks: 5 bytes per 64 KiB block plus a member header and trailer per chunk.
        #expect(output.count > input.count)
        #expect(output.count < input.count + input.count / 1000)
        try await withTemporaryDirectory("kiln-pgz") { tmp in
            try output.write(to: URL(fileURLWithPath: tmp.path + "/random.gz"))
            let sum = try Shell.run(["sh", "-c", "gunzip -c '\(tmp.path)/random.gz' | sha256sum"]).stdout.prefix(64)
            #expect("sha256:" + sum == Digest.sha256(input).description)
        }
    }
}
