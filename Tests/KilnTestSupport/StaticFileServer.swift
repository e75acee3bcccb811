import Foundation

/// A plain HTTP file server on 127.0.0.1 (Python's http.server) for tests that download inputs; it logs every
/// request, so a test can assert what was (not) fetched.
public final class StaticFileServer: @unchecked Sendable {
    public let port: Int
    public let root: String
    private let process: BackgroundProcess

    public init(root: String, log: String) throws {
        port = try freePort()
        self.root = root
        process = try BackgroundProcess(
            ["python3", "-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", root], log: log)
        try waitForPort(port)
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    /// The request lines seen so far (`GET /path HTTP/1.1`).
    public var requests: [String] {
        process.log.split(separator: "\n").compactMap { line in
            guard let open = line.firstIndex(of: "\""),
                let close = line[line.index(after: open)...].firstIndex(of: "\"")
            else { return nil }
            return String(line[line.index(after: open)..<close])
        }
    }

    public func stop() { process.stop() }
}
