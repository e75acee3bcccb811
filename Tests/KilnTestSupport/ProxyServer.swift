import Foundation

/// A real forward proxy (Debian's tinyproxy) on 127.0.0.1 with its own config and log, in the foreground so
/// `stop()` ends it by PID. It wants Basic proxy credentials when given some, and allows CONNECT to
/// `connectPorts` (to any port when none are named, tinyproxy's default).
public final class ProxyServer: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let port: Int
    let process: BackgroundProcess

    /// `http://[user:pass@]127.0.0.1:port`.
    public let url: String

    public init(user: String? = nil, password: String? = nil, connectPorts: [Int] = []) throws {
        directory = try TemporaryDirectory("kiln-proxy")
        port = try freePort()
        var config = """
            Port \(port)
            Listen 127.0.0.1
            Timeout 30
            LogFile "\(directory.path)/access.log"
            LogLevel Info
            MaxClients 50
            Allow 127.0.0.1

            """
        for port in connectPorts { config += "ConnectPort \(port)\n" }
        if let user, let password { config += "BasicAuth \(user) \(password)\n" }
        try directory.write("tinyproxy.conf", config)
        process = try BackgroundProcess(
            ["tinyproxy", "-d", "-c", directory.path + "/tinyproxy.conf"], log: directory.path + "/stdout.log")
        url = "http://" + (user.map { "\($0):\(password ?? "")@" } ?? "") + "127.0.0.1:\(port)"
        try waitForPort(port)
    }

    /// Requests the proxy forwarded or tunnelled: `GET http://…/v2/ HTTP/1.1`, `CONNECT 127.0.0.1:5000 HTTP/1.1`.
    public var requests: [String] {
        let log = (try? String(contentsOfFile: directory.path + "/access.log", encoding: .utf8)) ?? ""
        return log.split(separator: "\n").compactMap { line in
            guard let range = line.range(of: "): "), line.contains("Request (file descriptor") else { return nil }
            return String(line[range.upperBound...])
        }
    }

    public func stop() {
        process.stop()
        directory.remove()
    }
}
