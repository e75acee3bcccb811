import Foundation
import KilnHTTP
import KilnOCI
import KilnStore

extension RegistryClient {
    func scope(_ repository: String, _ actions: String) -> String { "repository:\(repository):\(actions)" }

    /// The blob's size when the repository already has it. `retryable` false: sent once (an upload's check
    /// runs under the upload's budget).
    public func blobSize(_ repository: String, _ digest: Digest, retryable: Bool = true) async throws -> Int64? {
        let response = try await send(
            HTTPRequest(
                .HEAD, try await url("\(repository)/blobs/\(digest)", repository: repository), retryable: retryable),
            scopes: [scope(repository, "pull")],
            step: "checking blob \(digest.encoded.prefix(12))", repository: repository)
        switch response.status {
        case 200: return response.header("Content-Length").flatMap { Int64($0) } ?? -1
        case 404: return nil
        default: throw failure(response, step: "checking blob \(digest.encoded.prefix(12))", repository: repository)
        }
    }

    public enum MountResult: Sendable {
        case mounted
        /// The registry declined and opened an upload session instead.
        case session(URL)
        case refused
    }

    /// Asks the registry to link a blob from another repository of the same registry (no bytes move).
    public func mountBlob(_ repository: String, _ digest: Digest, from source: String) async throws -> MountResult {
        let base = try await url("\(repository)/blobs/uploads/", repository: repository)
        var components = URLComponents(url: base, resolvingAgainstBaseURL: false)
        components?.queryItems = [
            URLQueryItem(name: "mount", value: digest.description), URLQueryItem(name: "from", value: source),
        ]
        guard let target = components?.url else { return .refused }
        // Safe to repeat: a mount either links the blob or opens a session, which is used or abandoned.
        let response = try await send(
            HTTPRequest(.POST, target, retryable: true),
            scopes: [scope(repository, "pull,push"), scope(source, "pull")], step: "mounting blob",
            repository: repository)
        switch response.status {
        case 201: return .mounted
        case 202:
            if let location = response.header("Location"), let next = URL(string: location, relativeTo: response.url) {
                return .session(next.absoluteURL)
            }
            return .refused
        default: return .refused
        }
    }

    /// Uploads a blob from a file: one PUT for small blobs, PATCH chunks then a PUT for large ones (the requests
    /// and their retries as `BlobUpload` decides). Every byte is read through a `StreamedFileCheck`: a file that
    /// does not hash to `digest` (a tampered or decayed store) fails before its last byte is sent, so the
    /// registry never stores it. The transport sends each request once; the upload retries under one
    /// `RetryBudget`, each request with its own attempts.
    public func uploadBlob(
        _ repository: String, digest: Digest, size: Int64, path: String, session: URL? = nil,
        progress: (@Sendable (Int64) -> Void)? = nil
    ) async throws {
        try await uploadBlob(
            repository, digest: digest, size: size, content: .file(path), session: session, progress: progress)
    }

    /// Where an upload's bytes come from.
    public enum UploadContent: Sendable {
        /// A local file, streamed from disk.
        case file(String)
        /// A blob streamed from another registry (`openBlob`), named `origin` in messages: every request of the
        /// upload opens the bytes it sends (`offset`, `length`) and pipes them through as they arrive, so a
        /// copy holds no piece of the blob beyond the transport's buffers.
        case stream(origin: String, open: @Sendable (Int64, Int64) async throws -> HTTPBodyStream)
    }

    /// `uploadBlob` from any `UploadContent`: the same requests, retries and digest check (every byte sent is
    /// hashed first; a mismatch fails before the last byte goes out).
    public func uploadBlob(
        _ repository: String, digest: Digest, size: Int64, content: UploadContent, session: URL? = nil,
        progress: (@Sendable (Int64) -> Void)? = nil
    ) async throws {
        let step = "uploading blob \(digest.encoded.prefix(12))"
        let path: String
        switch content {
        case .file(let file): path = file
        case .stream(let origin, _): path = origin
        }
        let check = StreamedFileCheck(path: path, expected: digest, size: size)
        @Sendable func body(_ offset: Int64, _ length: Int64) async throws -> HTTPRequest.Body {
            switch content {
            case .file(let path): return .file(path: path, offset: offset, length: length, check: check)
            case .stream(_, let open):
                return .piped(offset: offset, length: length, check: check) { try await open(offset, length) }
            }
        }
        let upload = BlobUpload(
            size: size, chunkSize: options.chunkSize, monolithicLimit: options.monolithicLimit, session: session)
        let requests = RegistryUploadRequests(
            client: self, repository: repository, digest: digest, size: size, step: step, body: body)
        try await BlobUpload.run(upload, through: requests, policy: policy, progress: progress)
    }

    /// `failure(response)`, as `SessionGone` when the session is unknown, else retryable when `retryable`
    /// statuses include it.
    func uploadFailure(_ response: HTTPResponse, step: String, repository: String, retryable: Set<Int> = [])
        -> Error
    {
        var error = failure(response, step: step, repository: repository)
        if retryable.contains(response.status) { error.isTransient = true }
        guard response.status == 404 else { return error }
        error.isTransient = true
        return SessionGone(error: error)
    }

    func startUpload(_ repository: String) async throws -> URL {
        let response = try await send(
            HTTPRequest(.POST, try await url("\(repository)/blobs/uploads/", repository: repository), retryable: false),
            scopes: [scope(repository, "pull,push")], step: "starting an upload", repository: repository)
        guard response.status == 202, let location = response.header("Location"),
            let next = URL(string: location, relativeTo: response.url)
        else { throw failure(response, step: "starting an upload", repository: repository) }
        return next.absoluteURL
    }

    func finishUpload(_ repository: String, _ location: URL, digest: Digest, body: HTTPRequest.Body, step: String)
        async throws
    {
        var components = URLComponents(url: location, resolvingAgainstBaseURL: false)
        let existing = components?.queryItems ?? []
        components?.queryItems = existing + [URLQueryItem(name: "digest", value: digest.description)]
        guard let target = components?.url else {
            throw RegistryError(
                registry: registry, repository: repository, step: step,
                message: "the registry gave an unusable upload location \(location)")
        }
        let length = body.length
        let response = try await send(
            HTTPRequest(
                .PUT, target, headers: [("Content-Type", "application/octet-stream"), ("Content-Length", "\(length)")],
                body: body, retryable: false),
            scopes: [scope(repository, "pull,push")], step: step, repository: repository)
        guard response.status == 201 else { throw uploadFailure(response, step: step, repository: repository) }
        if let answered = response.header("Docker-Content-Digest"), answered != digest.description {
            throw RegistryError(
                registry: registry, repository: repository, step: step, status: 201, code: nil,
                message: "the registry stored digest \(answered), not \(digest)",
                hint: "the blob was corrupted in transit; push again")
        }
    }

    /// Asks the registry how much of an upload it holds (GET on the session: `Range: 0-N`): the latest
    /// Location and the offset to continue from.
    func uploadStatus(_ repository: String, _ location: URL, step: String) async throws -> (URL, Int64) {
        let response = try await send(
            HTTPRequest(.GET, location, retryable: false), scopes: [scope(repository, "pull,push")], step: step,
            repository: repository)
        guard response.status == 204 else {
            throw uploadFailure(response, step: "resuming an upload", repository: repository)
        }
        let next = response.header("Location").flatMap { URL(string: $0, relativeTo: response.url) }
        return (next?.absoluteURL ?? location, Self.resumeOffset(response.header("Range")))
    }

    /// PATCHes the `chunkSize` piece at `offset`; returns the latest Location and how far the registry
    /// confirms it has the blob. A 416 (the registry holds another offset) is retried after a status check.
    func uploadChunk(
        _ repository: String, _ location: URL, offset: Int64, length: Int64, body: HTTPRequest.Body, step: String
    ) async throws -> (URL, Int64) {
        let response = try await send(
            HTTPRequest(
                .PATCH, location,
                headers: [
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Range", "\(offset)-\(offset + length - 1)"),
                    ("Content-Length", "\(length)"),
                ], body: body, retryable: false),
            scopes: [scope(repository, "pull,push")], step: step, repository: repository)
        guard response.status == 202 else {
            throw uploadFailure(response, step: step, repository: repository, retryable: [416])
        }
        let next = response.header("Location").flatMap { URL(string: $0, relativeTo: response.url) }
        let confirmed = Self.rangeEnd(response.header("Range")).map { $0 + 1 } ?? offset + length
        guard confirmed > offset else {
            // Accepted but not kept: counted as a failure of this PATCH, so a registry doing it forever ends the
            // upload.
            throw RegistryError(
                registry: registry, repository: repository, step: step, status: 202,
                message: "the registry confirmed no byte of the chunk at \(offset)", isTransient: true)
        }
        return (next?.absoluteURL ?? location, confirmed)
    }

    /// Where to continue an upload: distribution reports `0-0` both for 0 and 1 byte received; chunks are far
    /// larger than one byte, so `0-0` means nothing arrived.
    static func resumeOffset(_ header: String?) -> Int64 {
        guard let end = rangeEnd(header), end > 0 else { return 0 }
        return end + 1
    }

    /// The end of a `Range: 0-N` (or `bytes=0-N`) header.
    static func rangeEnd(_ header: String?) -> Int64? {
        guard let header, let dash = header.lastIndex(of: "-") else { return nil }
        return Int64(header[header.index(after: dash)...])
    }

    /// `length` bytes of a blob from `offset`, unread: the body to pipe into an upload (`UploadContent.stream`).
    /// A `Range` request unless it is the whole blob; a registry that ignores the range answers with the whole
    /// blob, whose leading bytes the stream then drops. Retried like any GET.
    public func openBlob(_ repository: String, _ digest: Digest, offset: Int64, length: Int64, size: Int64)
        async throws -> HTTPBodyStream
    {
        let step = "reading blob \(digest.encoded.prefix(12)) at \(offset)"
        let whole = offset == 0 && length == size
        var request = HTTPRequest(.GET, try await url("\(repository)/blobs/\(digest)", repository: repository))
        if !whole { request.headers.append(("Range", "bytes=\(offset)-\(offset + length - 1)")) }
        for attempt in 0..<2 {
            var authorized = request
            if let auth = try await authorization(scopes: [scope(repository, "pull")], repository: repository) {
                authorized.headers.append(("Authorization", auth))
            }
            let (response, stream): (HTTPResponse, HTTPBodyStream?)
            do {
                (response, stream) = try await transport.open(authorized, skip: offset)
            } catch let error as HTTPError {
                throw RegistryError(
                    registry: registry, repository: repository, step: step, message: error.description,
                    isTransient: error.isTransient)
            }
            if response.status == 401 && attempt == 0 { continue }
            guard let stream else { throw failure(response, step: step, repository: repository) }
            // A partial answer must start where it was asked to: the upload checks bytes by their offset.
            if response.status == 206, !Self.contentRangeStarts(response.header("Content-Range"), at: offset) {
                throw RegistryError(
                    registry: registry, repository: repository, step: step,
                    message: "answered the range \(response.header("Content-Range") ?? "(none)")", isTransient: true)
            }
            return stream
        }
        throw RegistryError(registry: registry, repository: repository, step: step, message: "unauthorized")
    }

    /// Whether `Content-Range: bytes START-END/SIZE` starts at `offset`.
    static func contentRangeStarts(_ header: String?, at offset: Int64) -> Bool {
        guard let header, let dash = header.firstIndex(of: "-") else { return false }
        let start = header[..<dash].split(separator: " ").last.flatMap { Int64($0) }
        return start == offset
    }

    /// Downloads a blob into `path`, verifying digest and size (nothing is left on a mismatch).
    public func downloadBlob(
        _ repository: String, _ descriptor: Descriptor, to path: String,
        progress: (@Sendable (Int64, Int64?) -> Void)? = nil
    ) async throws {
        let step = "downloading blob \(descriptor.digest.encoded.prefix(12))"
        let request = HTTPRequest(
            .GET, try await url("\(repository)/blobs/\(descriptor.digest)", repository: repository))
        for attempt in 0..<2 {
            var authorized = request
            if let auth = try await authorization(scopes: [scope(repository, "pull")], repository: repository) {
                authorized.headers.append(("Authorization", auth))
            }
            do {
                let result = try await transport.download(
                    authorized, to: path, expected: descriptor.digest, expectedSize: descriptor.size, progress: progress
                )
                if result.response.status == 200 { return }
                if result.response.status == 401 && attempt == 0 { continue }
                throw failure(result.response, step: step, repository: repository)
            } catch let error as HTTPError {
                throw RegistryError(
                    registry: registry, repository: repository, step: step, message: error.description,
                    isTransient: error.isTransient)
            }
        }
    }
}

/// The requests of one blob upload as `RegistryClient` sends them (each once; `BlobUpload.run` retries).
struct RegistryUploadRequests: BlobUploadRequests {
    let client: RegistryClient
    let repository: String
    let digest: Digest
    let size: Int64
    let step: String
    /// The bytes `offset ..< offset + length`, checked against the digest as they are read.
    let body: @Sendable (Int64, Int64) async throws -> HTTPRequest.Body

    func start() async throws -> URL { try await client.startUpload(repository) }

    func status(_ session: URL) async throws -> (URL, Int64) {
        try await client.uploadStatus(repository, session, step: step)
    }

    func chunk(_ session: URL, offset: Int64, length: Int64) async throws -> (URL, Int64) {
        let (next, confirmed) = try await client.uploadChunk(
            repository, session, offset: offset, length: length, body: try await body(offset, length), step: step)
        client.addUploaded(confirmed - offset)
        return (next, confirmed)
    }

    func isStored() async throws -> Bool { try await client.blobSize(repository, digest, retryable: false) != nil }

    func finish(_ session: URL, whole: Bool) async throws {
        try await client.finishUpload(
            repository, session, digest: digest, body: whole ? try await body(0, size) : .none, step: step)
        if whole { client.addUploaded(size) }
    }
}
