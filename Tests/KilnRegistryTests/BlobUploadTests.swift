import Foundation
import KilnHTTP
import Synchronization
import Testing

@testable import KilnRegistry

/// An in-process registry's upload endpoints for `BlobUpload.run`: sessions with the bytes each holds, the
/// blob once committed, and faults scripted per request, so every retry path runs without a server.
actor FakeUploadRegistry: BlobUploadRequests {
    enum Fault {
        /// The connection breaks after the registry took `kept` bytes of the request's body (a transient error).
        case reset(kept: Int64 = 0)
        /// A 404: the registry forgot the session.
        case gone
        /// A 416: the registry holds another offset than the request's.
        case rangeMismatch
        /// The PUT commits the blob, then the connection breaks before the answer.
        case committedThenReset
        /// A 403: final, not retried.
        case forbidden
    }

    let size: Int64
    /// Faults by request (`POST`, `GET`, `PATCH <offset>`, `HEAD`, `PUT`), each used once, in order.
    private var faults: [(request: String, fault: Fault)]
    private var sessions: [String: Int64] = [:]
    private var opened = 0
    private(set) var stored = false
    /// Every request received, as `POST`, `PATCH 0-1048575`, `PUT (whole)`.
    private(set) var log: [String] = []

    init(size: Int64, faults: [(String, Fault)] = []) {
        self.size = size
        self.faults = faults.map { (request: $0.0, fault: $0.1) }
    }

    func error(_ status: Int?, transient: Bool) -> RegistryError {
        RegistryError(
            registry: "fake", repository: "ns/app", step: "uploading", status: status, message: "scripted",
            isTransient: transient)
    }

    /// The scripted fault for `request`, if any (used up).
    func fault(_ request: String) -> Fault? {
        guard let index = faults.firstIndex(where: { $0.request == request }) else { return nil }
        return faults.remove(at: index).fault
    }

    /// Throws what a fault that needs no request-specific handling throws.
    func raise(_ fault: Fault) throws {
        switch fault {
        case .reset, .committedThenReset: throw error(nil, transient: true)
        case .gone: throw SessionGone(error: error(404, transient: true))
        case .rangeMismatch: throw error(416, transient: true)
        case .forbidden: throw error(403, transient: false)
        }
    }

    /// The session a location names (its path; the query changes with every answer, as distribution's
    /// `_state` does), or SessionGone.
    func session(_ location: URL) throws -> String {
        guard sessions[location.path] != nil else { throw SessionGone(error: error(404, transient: true)) }
        return location.path
    }

    func location(_ id: String) -> URL {
        opened += 1
        return URL(string: "https://fake.example\(id)?_state=\(opened)")!
    }

    func start() async throws -> URL {
        log.append("POST")
        if let fault = fault("POST") { try raise(fault) }
        let id = "/v2/ns/app/blobs/uploads/\(sessions.count + 1)"
        sessions[id] = 0
        return location(id)
    }

    func status(_ location: URL) async throws -> (URL, Int64) {
        log.append("GET")
        if let fault = fault("GET") { try raise(fault) }
        let id = try session(location)
        return (self.location(id), sessions[id] ?? 0)
    }

    func chunk(_ location: URL, offset: Int64, length: Int64) async throws -> (URL, Int64) {
        log.append("PATCH \(offset)-\(offset + length - 1)")
        let id = try session(location)
        let fault = fault("PATCH \(offset)")
        if case .reset(let kept) = fault {
            sessions[id] = offset + kept
            try raise(.reset())
        }
        if let fault { try raise(fault) }
        guard sessions[id] == offset else { throw error(416, transient: true) }
        sessions[id] = offset + length
        return (self.location(id), offset + length)
    }

    func isStored() async throws -> Bool {
        log.append("HEAD")
        if let fault = fault("HEAD") { try raise(fault) }
        return stored
    }

    func finish(_ location: URL, whole: Bool) async throws {
        log.append(whole ? "PUT (whole)" : "PUT")
        let id = try session(location)
        let fault = fault("PUT")
        if case .committedThenReset = fault { stored = true }
        if let fault { try raise(fault) }
        guard whole || sessions[id] == size else { throw error(400, transient: false) }
        stored = true
        sessions[id] = nil
    }
}

/// The upload state machine through `BlobUpload.run` and an in-process fake registry: the requests it sends for
/// each answer, no Python server and no sockets (HostileRegistryTests and FaultRoundsTests keep the real ones).
struct BlobUploadTests {
    /// No waiting between attempts; 3 attempts per request.
    let policy = RetryPolicy(attempts: 3, baseDelay: 0, maxDelay: 0)
    let chunk: Int64 = 1 << 20

    /// Uploads `size` bytes (chunked above 1 MiB, in 1 MiB pieces) to `registry`; returns the confirmed offsets.
    @discardableResult
    func upload(_ size: Int64, to registry: FakeUploadRegistry) async throws -> [Int64] {
        let progress = ProgressLog()
        try await BlobUpload.run(
            BlobUpload(size: size, chunkSize: chunk, monolithicLimit: chunk), through: registry, policy: policy,
            progress: progress.add)
        return progress.values
    }

    @Test func aSmallBlobIsOnePut() async throws {
        let registry = FakeUploadRegistry(size: 1000)
        #expect(try await upload(1000, to: registry) == [1000])
        #expect(await registry.log == ["POST", "PUT (whole)"])
        #expect(await registry.stored)
    }

    @Test func aLargeBlobGoesInChunksThenAPutWithoutBody() async throws {
        let size = 2 * chunk + 10
        let registry = FakeUploadRegistry(size: size)
        #expect(try await upload(size, to: registry) == [chunk, 2 * chunk, size])
        #expect(
            await registry.log == [
                "POST", "PATCH 0-1048575", "PATCH 1048576-2097151", "PATCH 2097152-2097161", "PUT",
            ])
        #expect(await registry.stored)
    }

    @Test func aBrokenChunkResumesAtTheOffsetTheRegistryReports() async throws {
        let size = 2 * chunk
        // The registry kept 1000 bytes of the second chunk before the connection broke.
        let registry = FakeUploadRegistry(size: size, faults: [("PATCH \(chunk)", .reset(kept: 1000))])
        try await upload(size, to: registry)
        #expect(
            await registry.log == [
                "POST", "PATCH 0-1048575", "PATCH 1048576-2097151", "GET", "PATCH 1049576-2097151", "PUT",
            ])
        #expect(await registry.stored)
    }

    @Test func a416IsFollowedByAStatusCheckAndTheRegistrysOffset() async throws {
        let size = 2 * chunk
        let registry = FakeUploadRegistry(size: size, faults: [("PATCH \(chunk)", .rangeMismatch)])
        try await upload(size, to: registry)
        #expect(
            await registry.log == [
                "POST", "PATCH 0-1048575", "PATCH 1048576-2097151", "GET", "PATCH 1048576-2097151", "PUT",
            ])
        #expect(await registry.stored)
    }

    @Test func aForgottenSessionStartsAnewFromTheFirstByte() async throws {
        let size = 2 * chunk
        let registry = FakeUploadRegistry(size: size, faults: [("PATCH \(chunk)", .gone)])
        try await upload(size, to: registry)
        #expect(
            await registry.log == [
                "POST", "PATCH 0-1048575", "PATCH 1048576-2097151", "POST", "PATCH 0-1048575",
                "PATCH 1048576-2097151", "PUT",
            ])
        #expect(await registry.stored)
    }

    @Test func aFinalPutThatCommittedIsCheckedWithHeadAndNotSentAgain() async throws {
        let size = chunk + 1
        let registry = FakeUploadRegistry(size: size, faults: [("PUT", .committedThenReset)])
        try await upload(size, to: registry)
        #expect(await registry.log == ["POST", "PATCH 0-1048575", "PATCH 1048576-1048576", "PUT", "HEAD"])
        #expect(await registry.stored)
    }

    @Test func aFailedChunkedPutThatDidNotCommitIsSentAgainToTheSameSession() async throws {
        let size = chunk + 1
        let registry = FakeUploadRegistry(size: size, faults: [("PUT", .reset())])
        try await upload(size, to: registry)
        #expect(await registry.log == ["POST", "PATCH 0-1048575", "PATCH 1048576-1048576", "PUT", "HEAD", "PUT"])
        #expect(await registry.stored)
    }

    @Test func aFailedSmallPutGoesToANewSession() async throws {
        let registry = FakeUploadRegistry(size: 10, faults: [("PUT", .reset())])
        try await upload(10, to: registry)
        #expect(await registry.log == ["POST", "PUT (whole)", "HEAD", "POST", "PUT (whole)"])
        #expect(await registry.stored)
    }

    @Test func aFinalErrorIsThrownAtOnce() async throws {
        let registry = FakeUploadRegistry(size: 10, faults: [("PUT", .forbidden)])
        let error = await #expect(throws: RegistryError.self) { try await upload(10, to: registry) }
        #expect(error?.status == 403)
        #expect(await registry.log == ["POST", "PUT (whole)"])
        let stored = await registry.stored
        #expect(!stored)
    }

    @Test func aRequestThatKeepsFailingIsGivenUpAfterItsAttempts() async throws {
        let registry = FakeUploadRegistry(size: 10, faults: Array(repeating: ("POST", .reset()), count: 5))
        let error = await #expect(throws: RegistryError.self) { try await upload(10, to: registry) }
        #expect(error?.message.contains("gave up after 3 attempts") == true)
        #expect(await registry.log == ["POST", "POST", "POST"])
    }

    @Test func eachRequestHasItsOwnAttempts() async throws {
        // Two failures of each of three different requests: 2 < 3 attempts each, so the upload completes.
        let size = 2 * chunk
        let registry = FakeUploadRegistry(
            size: size,
            faults: [
                ("POST", .reset()), ("POST", .reset()), ("PATCH 0", .reset()), ("GET", .reset()),
                ("PATCH 0", .reset()), ("PUT", .reset()),
            ])
        try await upload(size, to: registry)
        #expect(await registry.stored)
    }

    @Test func theMachineDecidesFromAnswersAlone() {
        let session = URL(string: "https://r.example/v2/ns/app/blobs/uploads/1")!
        var upload = BlobUpload(size: 30, chunkSize: 10, monolithicLimit: 10)
        #expect(upload.next == .start)
        upload.started(session)
        #expect(upload.next == .chunk(session, offset: 0, length: 10))
        upload.sent(session, confirmed: 10)
        upload.failed(sessionGone: false)
        #expect(upload.next == .status(session))
        upload.resumed(session, at: 25)
        #expect(upload.next == .chunk(session, offset: 25, length: 5))
        upload.sent(session, confirmed: 30)
        #expect(upload.next == .finish(session, whole: false))
        upload.failed(sessionGone: false)
        #expect(upload.next == .checkStored)
        upload.checked(stored: false)
        #expect(upload.next == .finish(session, whole: false))
        upload.failed(sessionGone: true)
        #expect(upload.next == .start)
        upload.started(session)
        upload.finished()
        #expect(upload.next == nil && upload.isDone)
    }
}

/// Offsets an upload reported, in order.
final class ProgressLog: Sendable {
    private let offsets = Mutex<[Int64]>([])
    var values: [Int64] { offsets.withLock { $0 } }
    func add(_ offset: Int64) { offsets.withLock { $0.append(offset) } }
}
