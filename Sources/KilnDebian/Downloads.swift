import Foundation
import KilnHTTP
import KilnStore

extension DownloadCache {
    /// KilnHTTP's `fetch`, with failures in the Debian vocabulary (`DebianError.download`).
    func fetchFile(url: String, sha256 hex: String, size: Int64?, transport: HTTPTransport) async throws -> String {
        do {
            return try await fetch(url: url, sha256: hex, size: size, transport: transport)
        } catch HTTPError.status(_, let status, _) where status > 0 {
            throw DebianError.download(url: url, detail: "HTTP \(status)")
        } catch {
            throw DebianError.download(url: url, detail: "\(error)")
        }
    }
}
