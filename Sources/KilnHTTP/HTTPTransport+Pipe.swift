import AsyncHTTPClient
import Foundation
import KilnStore
import NIOCore

/// The body of a response still being received, to be piped into another request (`HTTPRequest.Body.piped`)
/// rather than collected: AsyncHTTPClient reads from the socket only as the consumer asks, so a copy holds a few
/// of its buffers whatever the body's size.
public struct HTTPBodyStream: Sendable {
    let body: HTTPClientResponse.Body
    /// Leading bytes to drop: a server that ignored a `Range` request answers with the whole body.
    let skip: Int64
    /// Names the source in messages.
    let url: URL
}

extension HTTPTransport {
    /// Sends a request (retried as `send` does) and returns the answer's status and headers; a 200 or 206 answer's
    /// body is left unread, as the stream (dropping its first `skip` bytes), any other answer's body is collected
    /// (64 KiB at most) for the error message.
    public func open(_ request: HTTPRequest, skip: Int64 = 0) async throws -> (HTTPResponse, HTTPBodyStream?) {
        try await withRetries(request) { request, clock in
            let response = try await self.execute(request, clock: clock)
            let status = Int(response.status.code)
            let headers = response.headers.map { ($0.name, $0.value) }
            if status == 200 || status == 206 {
                let stream = HTTPBodyStream(body: response.body, skip: status == 200 ? skip : 0, url: request.url)
                return (HTTPResponse(status: status, headers: headers, body: Data(), url: request.url), stream)
            }
            var body = Data()
            for try await buffer in response.body where body.count < 65536 {
                body.append(contentsOf: buffer.readableBytesView)
            }
            return (HTTPResponse(status: status, headers: headers, body: body, url: request.url), nil)
        }
    }

    /// A piped body as the client sends it: the source opened for this attempt, then its buffers as they come.
    func pipedBody(
        offset: Int64, length: Int64, check: StreamedFileCheck?, clock: RequestClock,
        open: @Sendable () async throws -> HTTPBodyStream
    ) async throws -> HTTPClientRequest.Body {
        let source: HTTPBodyStream
        do {
            source = try await open()
        } catch let error as HTTPError {
            throw error
        } catch {
            throw HTTPError.connection(
                url: "the source of the body", detail: "\(error)",
                transient: (error as? TransientFailure)?.isTransient ?? false)
        }
        return .stream(
            PipedChunks(source: source, offset: offset, length: length, check: check, clock: clock, options: options),
            length: .known(length))
    }
}

/// `length` bytes of a response body (after its `skip` bytes), each buffer shown to the body's
/// `StreamedFileCheck` before it is handed on, so bytes that do not hash to the expected digest never complete
/// the request that carries them.
struct PipedChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let source: HTTPBodyStream
    let offset: Int64
    let length: Int64
    let check: StreamedFileCheck?
    let clock: RequestClock
    /// The limits the source's failures are reported with.
    var options = HTTPOptions()

    struct AsyncIterator: AsyncIteratorProtocol {
        var upstream: HTTPClientResponse.Body.AsyncIterator
        var skip: Int64
        var position: Int64
        var remaining: Int64
        let url: URL
        let check: StreamedFileCheck?
        let clock: RequestClock
        let options: HTTPOptions

        mutating func next() async throws -> ByteBuffer? {
            while remaining > 0 {
                let read: ByteBuffer?
                do {
                    read = try await upstream.next()
                } catch {
                    // Named after the source here: the request carrying the body would report its own server
                    // (a source stalling mid-blob read as the destination timing out).
                    throw HTTPTransport.map(error, url: url, options: options)
                }
                guard var buffer = read else {
                    throw HTTPError.dropped(
                        url: url.absoluteString, detail: "the body ended \(remaining) bytes early")
                }
                if skip > 0 {
                    let dropped = Int(Swift.min(skip, Int64(buffer.readableBytes)))
                    buffer.moveReaderIndex(forwardBy: dropped)
                    skip -= Int64(dropped)
                }
                if Int64(buffer.readableBytes) > remaining {
                    buffer = buffer.getSlice(at: buffer.readerIndex, length: Int(remaining)) ?? buffer
                }
                guard buffer.readableBytes > 0 else { continue }
                if let check {
                    let at = position
                    try buffer.withUnsafeReadableBytes { try check.check($0, at: at) }
                }
                position += Int64(buffer.readableBytes)
                remaining -= Int64(buffer.readableBytes)
                clock.progress(buffer.readableBytes)
                return buffer
            }
            return nil
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(
            upstream: source.body.makeAsyncIterator(), skip: source.skip, position: offset, remaining: length,
            url: source.url, check: check, clock: clock, options: options)
    }
}
