import Foundation
import KilnHTTP
import KilnOCI

extension RegistryClient {
    func scope(_ repository: String, _ actions: String) -> String { "repository:\(repository):\(actions)" }

    /// The blob's size when the repository already has it.
    public func blobSize(_ repository: String, _ digest: Digest) async throws -> Int64? {
        let response = try await send(
            HTTPRequest(.HEAD, try await url("\(repository)/blobs/\(digest)", repository: repository)),
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

    /// Uploads a blob from a file: one PUT for small blobs, PATCH chunks for large ones. Its requests are sent
    /// once each by the transport; the upload as a whole retries under one `RetryBudget`: a failed start or
    /// PUT starts a new session, a broken chunk resumes from the offset the registry reports, and each
    /// confirmed chunk renews the budget.
    public func uploadBlob(
        _ repository: String, digest: Digest, size: Int64, path: String, session: URL? = nil,
        progress: (@Sendable (Int64) -> Void)? = nil
    ) async throws {
        let step = "uploading blob \(digest.encoded.prefix(12))"
        var session = session
        let chunks = size <= options.monolithicLimit ? 0 : Int((size + options.chunkSize - 1) / options.chunkSize)
        var budget = RetryBudget(policy, requests: 2 + chunks)
        while true {
            do {
                // After a failure the last PUT may have landed before the connection broke.
                if budget.total > 0, try await blobSize(repository, digest) != nil { return }
                let location = try await startUpload(repository, existing: session)
                session = nil
                budget.progressed()
                if size <= options.monolithicLimit {
                    try await finishUpload(
                        repository, location, digest: digest, body: .file(path: path, offset: 0, length: size),
                        step: step)
                    addUploaded(size)
                    progress?(size)
                } else {
                    let last = try await uploadChunks(
                        repository, location, size: size, path: path, step: step, budget: &budget, progress: progress)
                    try await finishUpload(repository, last, digest: digest, body: .none, step: step)
                }
                return
            } catch {
                try await budget.failed(error)
            }
        }
    }

    func startUpload(_ repository: String, existing: URL?) async throws -> URL {
        if let existing { return existing }
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
        var length: Int64 = 0
        if case .file(_, _, let n) = body { length = n }
        let response = try await send(
            HTTPRequest(
                .PUT, target, headers: [("Content-Type", "application/octet-stream"), ("Content-Length", "\(length)")],
                body: body, retryable: false),
            scopes: [scope(repository, "pull,push")], step: step, repository: repository)
        guard response.status == 201 else { throw failure(response, step: step, repository: repository) }
        if let answered = response.header("Docker-Content-Digest"), answered != digest.description {
            throw RegistryError(
                registry: registry, repository: repository, step: step, status: 201, code: nil,
                message: "the registry stored digest \(answered), not \(digest)",
                hint: "the blob was corrupted in transit; push again")
        }
    }

    /// PATCHes `chunkSize` pieces, always to the latest Location. After a failure it waits per the budget,
    /// asks the registry how much it has (GET on the session: `Range: 0-N`) and continues from there.
    func uploadChunks(
        _ repository: String, _ start: URL, size: Int64, path: String, step: String, budget: inout RetryBudget,
        progress: (@Sendable (Int64) -> Void)?
    ) async throws -> URL {
        var location = start
        var offset: Int64 = 0
        var resume = false
        while offset < size {
            do {
                if resume {
                    let status = try await send(
                        HTTPRequest(.GET, location, retryable: false), scopes: [scope(repository, "pull,push")],
                        step: step, repository: repository)
                    guard status.status == 204 else {
                        throw failure(status, step: "resuming an upload", repository: repository)
                    }
                    if let next = status.header("Location").flatMap({ URL(string: $0, relativeTo: status.url) }) {
                        location = next.absoluteURL
                    }
                    offset = Self.resumeOffset(status.header("Range"))
                    resume = false
                    // Knowing where to continue is a step forward: the PATCH gets its own attempts in a row
                    // (the budget's total still bounds the upload).
                    budget.progressed()
                }
                let length = min(options.chunkSize, size - offset)
                let response = try await send(
                    HTTPRequest(
                        .PATCH, location,
                        headers: [
                            ("Content-Type", "application/octet-stream"),
                            ("Content-Range", "\(offset)-\(offset + length - 1)"),
                            ("Content-Length", "\(length)"),
                        ], body: .file(path: path, offset: offset, length: length), retryable: false),
                    scopes: [scope(repository, "pull,push")], step: step, repository: repository)
                guard response.status == 202 else { throw failure(response, step: step, repository: repository) }
                if let next = response.header("Location").flatMap({ URL(string: $0, relativeTo: response.url) }) {
                    location = next.absoluteURL
                }
                let confirmed = Self.rangeEnd(response.header("Range")).map { $0 + 1 } ?? offset + length
                addUploaded(confirmed - offset)
                if confirmed > offset { budget.progressed() }
                offset = confirmed
                progress?(offset)
            } catch {
                try await budget.failed(error)
                resume = true
            }
        }
        return location
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
