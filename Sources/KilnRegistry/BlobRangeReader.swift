import Foundation
import KilnOCI

/// A blob of a registry repository read piece by piece (`Range` requests), for a registry-to-registry copy that
/// streams: each piece the upload asks for is fetched while the previous one is being sent, and dropped once
/// the upload moves past it. At most two pieces are held whatever the blob's size (no temporary file, no
/// whole-blob buffer); a retried piece is served from what is held.
public actor BlobRangeReader {
    public let source: RegistryRepository
    public let descriptor: Descriptor
    private var pieces: [Int64: (length: Int64, task: Task<Data?, Error>)] = [:]
    /// The most bytes ever held or in flight at once (for tests: bounded by two pieces).
    public private(set) var peak: Int64 = 0

    public init(source: RegistryRepository, descriptor: Descriptor) {
        self.source = source
        self.descriptor = descriptor
    }

    /// An upload that gave up leaves no piece downloading.
    deinit { for piece in pieces.values { piece.task.cancel() } }

    /// `length` bytes from `offset`; the next piece of the same length is fetched meanwhile. Throws
    /// `RangeUnsupported` when the registry does not serve ranges.
    public func read(_ offset: Int64, _ length: Int64) async throws -> Data {
        let task = fetch(offset, length)
        pieces = pieces.filter { $0.key >= offset }
        let next = offset + length
        if next < descriptor.size { _ = fetch(next, min(length, descriptor.size - next)) }
        peak = max(peak, pieces.values.reduce(0) { $0 + $1.length })
        guard let data = try await task.value else { throw RangeUnsupported() }
        return data
    }

    /// Whether the registry serves ranges: reads the first piece (kept for the upload that follows).
    public func servesRanges(first length: Int64) async -> Bool {
        (try? await read(0, min(length, descriptor.size))) != nil
    }

    private func fetch(_ offset: Int64, _ length: Int64) -> Task<Data?, Error> {
        if let held = pieces[offset], held.length == length { return held.task }
        let source = self.source
        let digest = descriptor.digest
        let task = Task {
            try await source.client.blobRange(source.repository, digest, offset: offset, length: length)
        }
        pieces[offset] = (length, task)
        return task
    }

    /// The registry answered a range request with the whole blob.
    public struct RangeUnsupported: Error {}
}
