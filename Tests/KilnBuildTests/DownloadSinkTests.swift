import Foundation
import KilnHTTP
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

/// Downloads write through a sink the caller provides; a sink that cannot store (a full disk) is reported as
/// a storage failure after one request, not as an unreachable server after retries.
@Suite struct DownloadSinkTests {
    final class FullDisk: DownloadSink {
        func reset() throws {}
        func write(_ bytes: UnsafeRawBufferPointer) throws {
            throw StoreError.io(path: "/cache/x", operation: "write", detail: "No space left on device")
        }
    }

    @Test func aFullCacheIsNotANetworkFailure() async throws {
        try await withTemporaryDirectory("kiln-sink") { tmp in
            try FileManager.default.createDirectory(atPath: tmp.path + "/www", withIntermediateDirectories: true)
            _ = try tmp.write("www/file.bin", String(repeating: "x", count: 4096))
            try await withFileServer(root: tmp.path + "/www") { server in
                let transport = try HTTPTransport()
                do {
                    _ = try await transport.download(
                        HTTPRequest(.GET, URL(string: server.url + "/file.bin")!), into: FullDisk())
                    Issue.record("the download should have failed")
                } catch let error as HTTPError {
                    #expect(
                        "\(error)".contains("cannot store the download") && "\(error)".contains("No space left"),
                        "\(error)"
                    )
                    #expect(!"\(error)".contains("cannot reach"))
                }
                await transport.shutdown()
                #expect(server.requests.filter { $0.contains("file.bin") }.count == 1, "not retried")

                // Through the cache, a good download lands under its digest and leaves no temporary behind.
                let cache = DownloadCache(root: tmp.path + "/cache")
                let digest = Digest.sha256(String(repeating: "x", count: 4096))
                let second = try HTTPTransport()
                let path = try await cache.fetch(
                    url: server.url + "/file.bin", sha256: digest.encoded, size: 4096, transport: second)
                await second.shutdown()
                #expect(path == cache.path(for: digest))
                #expect(
                    try FileManager.default.contentsOfDirectory(atPath: tmp.path + "/cache/sha256") == [digest.encoded])
            }
        }
    }
}
