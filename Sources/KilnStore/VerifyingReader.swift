import Foundation
import KilnOCI
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Reads a content-addressed file and checks, as it goes, that it is what its name says: at the end of the
/// stream the sha256 (and size) must match, else `StoreError.corruptBlob`. Readers that stream a stored blob
/// anyway (export, push, verify, diff) read through this, so a tampered or bit-rotted store is refused at the
/// first use instead of being copied on.
public final class VerifyingReader {
    public let path: String
    public let expected: Digest?
    public let expectedSize: Int64?
    public private(set) var count: Int64 = 0
    private var hasher = SHA256()
    private let fd: Int32
    private var finished = false

    /// `expected` nil only hashes (see `digest`).
    public init(path: String, expected: Digest?, expectedSize: Int64? = nil) throws {
        self.path = path
        self.expected = expected
        self.expectedSize = expectedSize
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw StoreError.io(path: path, operation: "open", detail: String(cString: strerror(errno)))
        }
    }

    deinit { close(fd) }

    /// Fills `buffer` from the file; returns 0 at the end, after the digest was checked.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError.io(path: path, operation: "read", detail: String(cString: strerror(errno)))
            }
            if n == 0 {
                try finish()
                return 0
            }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            count += Int64(n)
            if let expectedSize, count > expectedSize, let expected {
                throw StoreError.corruptBlob(path: path, expected: expected, actual: hasher.finalize())
            }
            return n
        }
    }

    /// Streams the whole file to `body` in chunks; the digest is checked before the last call returns.
    public func forEachChunk(size: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = try read(into: buffer)
            if n == 0 { return }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
    }

    /// The digest of everything read (valid once `read` returned 0).
    public private(set) var digest: Digest?

    private func finish() throws {
        guard !finished else { return }
        finished = true
        let actual = hasher.finalize()
        digest = actual
        if let expected, actual != expected || (expectedSize.map { $0 != count } ?? false) {
            throw StoreError.corruptBlob(path: path, expected: expected, actual: actual)
        }
    }

    /// sha256 and size of the file at `path`.
    public static func digest(of path: String) throws -> (digest: Digest, size: Int64) {
        let reader = try VerifyingReader(path: path, expected: nil)
        try reader.forEachChunk { _ in }
        return (reader.digest!, reader.count)
    }

    /// Reads the whole file at `path`, refusing it unless it hashes to `expected`.
    public static func verify(_ path: String, expected: Digest, expectedSize: Int64? = nil) throws {
        try VerifyingReader(path: path, expected: expected, expectedSize: expectedSize).forEachChunk { _ in }
    }
}

/// The verifying read for a file that is sent in pieces (a blob pushed in one PUT or in PATCH chunks, a piece
/// sent again after a resume or in a new session): each piece is reported as it is read for sending, the
/// bytes are hashed in file order, each once, and the piece that would complete the file is refused unless
/// the whole file hashes to `expected`. A blob whose content does not match its name therefore never
/// completes an upload: the request carrying its last byte fails before that byte is sent.
public final class StreamedFileCheck: Sendable {
    public let path: String
    public let expected: Digest
    public let size: Int64

    private struct Progress: ~Copyable {
        var hasher = SHA256()
        /// Bytes `0..<hashed` of the file went into `hasher`.
        var hashed: Int64 = 0
        /// Set once the whole file was hashed and did not match.
        var mismatch: StoreError?
    }

    private let progress = Mutex(Progress())

    public init(path: String, expected: Digest, size: Int64) {
        self.path = path
        self.expected = expected
        self.size = size
    }

    /// Reports `bytes`, read from the file at `offset` to be sent; throws `StoreError.corruptBlob` instead of
    /// returning when they end the file and the file does not match.
    public func check(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        try progress.withLock { progress in
            let end = offset + Int64(bytes.count)
            if offset > progress.hashed {
                // Bytes this check never saw (no upload sends them, but the digest must cover them): read the
                // whole file once instead.
                do {
                    try VerifyingReader.verify(path, expected: expected, expectedSize: size)
                } catch let error as StoreError {
                    progress.mismatch = error
                }
                progress.hashed = size
            }
            if end > progress.hashed, progress.hashed < size {
                let from = Int(progress.hashed - offset)
                let upTo = Int(min(end, size) - offset)
                progress.hasher.update(UnsafeRawBufferPointer(rebasing: bytes[from..<upTo]))
                progress.hashed = offset + Int64(upTo)
                if progress.hashed == size {
                    let actual = progress.hasher.finalize()
                    if actual != expected {
                        progress.mismatch = .corruptBlob(path: path, expected: expected, actual: actual)
                    }
                }
            }
            if end >= size, let mismatch = progress.mismatch { throw mismatch }
        }
    }
}
