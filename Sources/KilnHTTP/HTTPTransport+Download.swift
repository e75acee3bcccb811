import Foundation
import KilnOCI
import KilnStore

/// Where a download's body goes. The transport hashes and counts the bytes and checks them against what was
/// expected; the sink only stores them, and is `reset` when a retry starts the body over. The caller decides
/// what happens to a finished sink (an `AtomicFileWriter` is committed under its digest, or discarded).
public protocol DownloadSink: AnyObject, Sendable {
    func reset() throws
    func write(_ bytes: UnsafeRawBufferPointer) throws
}

extension AtomicFileWriter: DownloadSink {}

extension HTTPTransport {
    /// Streams a successful GET's body into `sink`, hashing as it goes. A wrong digest or size throws (the
    /// caller discards the sink). Other answers are returned with their body and nothing written.
    public func download(
        _ request: HTTPRequest, into sink: some DownloadSink, expected: Digest? = nil, expectedSize: Int64? = nil,
        progress: (@Sendable (Int64, Int64?) -> Void)? = nil
    ) async throws -> (response: HTTPResponse, digest: Digest?, size: Int64) {
        try await withRetries(request) { request, clock in
            let response = try await self.execute(request, clock: clock)
            let status = Int(response.status.code)
            let headers = response.headers.map { ($0.name, $0.value) }
            guard status == 200 else {
                var body = Data()
                for try await buffer in response.body where body.count < 65536 {
                    body.append(contentsOf: buffer.readableBytesView)
                }
                return (HTTPResponse(status: status, headers: headers, body: body, url: request.url), nil, 0)
            }
            let declared = response.headers.first(name: "content-length").flatMap { Int64($0) }
            // A server announcing another size than the descriptor's is refused before a byte is read.
            if let expectedSize, let declared, declared != expectedSize {
                throw HTTPError.sizeMismatch(url: request.url.absoluteString, expected: expectedSize, actual: declared)
            }
            let total = expectedSize ?? declared
            // A failure to store (a full disk) is the sink's, not the network's: reported as such, never retried.
            func storing(_ body: () throws -> Void) throws {
                do { try body() } catch {
                    throw HTTPError.file(
                        path: request.url.absoluteString, detail: "cannot store the download: \(error)")
                }
            }
            try storing { try sink.reset() }
            var hasher = SHA256()
            var size: Int64 = 0
            for try await buffer in response.body {
                clock.progress(buffer.readableBytes)
                size += Int64(buffer.readableBytes)
                if let expectedSize, size > expectedSize {
                    throw HTTPError.sizeMismatch(url: request.url.absoluteString, expected: expectedSize, actual: size)
                }
                try buffer.withUnsafeReadableBytes { bytes in
                    hasher.update(bytes)
                    try storing { try sink.write(bytes) }
                }
                progress?(size, total)
            }
            let digest = hasher.finalize()
            if let expectedSize, size != expectedSize {
                throw HTTPError.sizeMismatch(url: request.url.absoluteString, expected: expectedSize, actual: size)
            }
            if let expected, expected != digest {
                throw HTTPError.digestMismatch(url: request.url.absoluteString, expected: expected, actual: digest)
            }
            return (HTTPResponse(status: 200, headers: headers, body: Data(), url: request.url), digest, size)
        }
    }

    /// Downloads into a new file at `path`, atomically: nothing is at `path` unless the digest and size matched.
    public func download(
        _ request: HTTPRequest, to path: String, expected: Digest? = nil, expectedSize: Int64? = nil,
        progress: (@Sendable (Int64, Int64?) -> Void)? = nil
    ) async throws -> (response: HTTPResponse, digest: Digest?, size: Int64) {
        let writer: AtomicFileWriter
        do {
            writer = try AtomicFileWriter(path: path)
        } catch {
            throw HTTPError.file(path: path, detail: "\(error)")
        }
        defer { writer.discard() }
        let result = try await download(
            request, into: writer, expected: expected, expectedSize: expectedSize, progress: progress)
        if result.response.status == 200 {
            do {
                try writer.commit()
            } catch {
                throw HTTPError.file(path: path, detail: "\(error)")
            }
        }
        return result
    }
}

extension DownloadCache {
    /// The cached file for `hex`, downloading it from `url` first if needed: size and sha256 are checked
    /// before the file gets its name, so nothing unverified is ever in the cache.
    public func fetch(
        url: String, sha256 hex: String, size: Int64?, transport: HTTPTransport,
        progress: (@Sendable (Int64, Int64?) -> Void)? = nil
    ) async throws -> String {
        if let hit = cached(sha256: hex, size: size) { return hit }
        guard let digest = try? Digest(sha256Hex: hex) else {
            throw HTTPError.status(url: url, status: 0, body: "'\(hex)' is not a sha256 digest")
        }
        guard let target = URL(string: url) else {
            throw HTTPError.connection(url: url, detail: "not a URL", transient: false)
        }
        let writer: AtomicFileWriter
        do {
            writer = try self.writer()
        } catch {
            throw HTTPError.file(path: root, detail: "\(error)")
        }
        defer { writer.discard() }
        let answer = try await transport.download(
            HTTPRequest(.GET, target), into: writer, expected: digest, expectedSize: size, progress: progress)
        guard answer.response.status == 200 else {
            throw HTTPError.status(
                url: url, status: answer.response.status,
                body: String(decoding: answer.response.body.prefix(300), as: UTF8.self))
        }
        do {
            try writer.commit(as: path(sha256: hex))
        } catch {
            throw HTTPError.file(path: path(sha256: hex), detail: "\(error)")
        }
        return path(sha256: hex)
    }
}
