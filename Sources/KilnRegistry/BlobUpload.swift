import Foundation
import KilnHTTP

/// A blob upload as a state machine (the shape of async-http-client's connection pool state machine): it
/// decides the next request from what the registry answered so far, and does no I/O, so every path through it
/// is tested without a registry. `BlobUpload.run` sends what it decides; `RegistryClient.uploadBlob` is its one
/// user.
///
/// A small blob goes in one PUT; a large one in PATCH chunks, then a PUT without a body. The rules for failures:
/// - a failed start is sent again;
/// - a broken chunk (or a 416: the registry holds another offset) resumes at the offset the registry reports
///   (GET on the session);
/// - before a failed PUT is sent again, a HEAD asks whether the registry stored the blob anyway (the connection
///   may break after the commit); a small blob's PUT then goes to a new session (the failed one may hold part of
///   its body), the final PUT of a chunked upload to the same;
/// - a session the registry no longer knows (404) is replaced by a new one, from the first byte.
struct BlobUpload: Sendable, Equatable {
    /// The next request to send.
    enum Request: Sendable, Equatable {
        /// POST: open a session.
        case start
        /// GET on the session: how much of the blob the registry holds.
        case status(URL)
        /// PATCH the bytes `offset ..< offset + length`.
        case chunk(URL, offset: Int64, length: Int64)
        /// HEAD on the blob: did a failed PUT store it after all?
        case checkStored
        /// PUT with the digest: the whole blob as the body (`whole`), or none after the chunks.
        case finish(URL, whole: Bool)

        /// How the retry budget counts the request: each its own attempts.
        var name: String {
            switch self {
            case .start: return "POST (start)"
            case .status: return "GET (upload status)"
            case .chunk(_, let offset, _): return "PATCH at \(offset)"
            case .checkStored: return "HEAD (stored?)"
            case .finish: return "PUT (finish)"
            }
        }
    }

    let size: Int64
    let chunkSize: Int64
    /// Sent in PATCH chunks (larger than the monolithic limit), else in one PUT.
    let chunked: Bool
    private(set) var session: URL?
    /// How much of the blob the registry confirmed.
    private(set) var offset: Int64 = 0
    /// The last request failed: the registry may hold more of the blob (or all of it) than is known.
    private(set) var unsure = false
    /// The registry has the blob: nothing more to send.
    private(set) var isDone = false

    init(size: Int64, chunkSize: Int64, monolithicLimit: Int64, session: URL? = nil) {
        self.size = size
        self.chunkSize = max(chunkSize, 1)
        chunked = size > monolithicLimit
        self.session = session
    }

    /// What to send now (nil once done).
    var next: Request? {
        guard !isDone else { return nil }
        guard let session else { return .start }
        if chunked && offset < size {
            return unsure ? .status(session) : .chunk(session, offset: offset, length: min(chunkSize, size - offset))
        }
        return unsure ? .checkStored : .finish(session, whole: !chunked)
    }

    /// The registry opened a session.
    mutating func started(_ location: URL) {
        session = location
        offset = 0
        unsure = false
    }

    /// The registry reported how much it holds (and the session's latest location).
    mutating func resumed(_ location: URL, at registryOffset: Int64) {
        session = location
        offset = registryOffset
        unsure = false
    }

    /// A chunk was accepted: the registry holds the blob up to `confirmed`.
    mutating func sent(_ location: URL, confirmed: Int64) {
        session = location
        offset = confirmed
    }

    /// The answer to `checkStored`.
    mutating func checked(stored: Bool) {
        if stored {
            isDone = true
            return
        }
        unsure = false
        // A failed monolithic PUT may have left part of its body in the session: start again in a new one.
        if !chunked { session = nil }
    }

    /// The PUT was answered 201: the registry has the blob.
    mutating func finished() { isDone = true }

    /// A request failed and will be retried: unless the session is known to be gone, its state is uncertain.
    mutating func failed(sessionGone: Bool) {
        if sessionGone {
            session = nil
        } else {
            unsure = session != nil
        }
    }
}

/// The requests of an upload, one method each. `RegistryClient` sends them to a registry; tests answer them in
/// process. Each is sent once: `BlobUpload.run` retries.
protocol BlobUploadRequests: Sendable {
    func start() async throws -> URL
    /// The session's latest location and the offset to continue from.
    func status(_ session: URL) async throws -> (URL, Int64)
    /// The session's latest location and how far the registry confirms it holds the blob.
    func chunk(_ session: URL, offset: Int64, length: Int64) async throws -> (URL, Int64)
    func isStored() async throws -> Bool
    func finish(_ session: URL, whole: Bool) async throws
}

/// The registry answered 404 for an upload session: it expired, or was cancelled after a request that broke
/// (distribution cancels a session whose recorded offset no longer matches). A new one is needed.
struct SessionGone: Error {
    var error: RegistryError
}

extension BlobUpload {
    /// Sends what `upload` decides until the registry has the blob, each request with its own attempts and
    /// deadline under `policy` (a `RetryBudget`). `progress` gets the bytes the registry confirmed.
    static func run(
        _ upload: BlobUpload, through requests: some BlobUploadRequests, policy: RetryPolicy,
        progress: (@Sendable (Int64) -> Void)? = nil
    ) async throws {
        var upload = upload
        var budget = RetryBudget(policy)
        while let request = upload.next {
            do {
                switch request {
                case .start: upload.started(try await requests.start())
                case .status(let session):
                    let (location, offset) = try await requests.status(session)
                    upload.resumed(location, at: offset)
                case .chunk(let session, let offset, let length):
                    let (location, confirmed) = try await requests.chunk(session, offset: offset, length: length)
                    upload.sent(location, confirmed: confirmed)
                    progress?(confirmed)
                case .checkStored: upload.checked(stored: try await requests.isStored())
                case .finish(let session, let whole):
                    try await requests.finish(session, whole: whole)
                    upload.finished()
                    if whole { progress?(upload.size) }
                }
                budget.succeeded(request.name)
            } catch let gone as SessionGone {
                try await budget.failed(gone.error, request: request.name)
                upload.failed(sessionGone: true)
            } catch {
                try await budget.failed(error, request: request.name)
                upload.failed(sessionGone: false)
            }
        }
    }
}
