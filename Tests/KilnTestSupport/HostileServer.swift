import Foundation

/// A scriptable misbehaving HTTP server (python3) for transport and registry tests: it stalls, trickles,
/// resets, redirects, echoes the Authorization header it received, lies about sizes, corrupts bodies, and
/// points clients at foreign token realms, as a hostile registry or proxy would. Requests that no rule takes
/// are forwarded to `upstream` (a real docker-registry) when one is given, else answered 404.
///
/// Rules are read from a file on every request, so a test can change them between steps. Every request is
/// logged as one JSON line (method, path, the Authorization header, arrival time).
public final class HostileServer: @unchecked Sendable {
    /// One behaviour: requests whose method and path (a regular expression) match get `action`.
    public struct Rule: Codable, Sendable {
        public enum Action: String, Codable, Sendable {
            /// Answer `status` with `headers` and `body` (`{auth}` in either becomes the received Authorization
            /// header, `{port}` this server's port); `declared` overrides Content-Length (a lie).
            case reply
            /// Send the status line and headers (`declared` as Content-Length), then nothing for `seconds`.
            case stall
            /// Send the headers, then one byte every `seconds` up to `declared`.
            case trickle
            /// Read the request, then reset the connection (RST).
            case reset
            /// Forward to the upstream registry, flipping one byte of the answer's body (a lying mirror).
            case corrupt
            /// Forward to the upstream registry, send the answer's head and the first half of its body, then
            /// nothing for `seconds` (a source that stalls mid-blob).
            case stallMidway
        }
        public var method: String?
        public var path: String
        public var action: Action
        public var status: Int?
        public var headers: [String: String]?
        public var body: String?
        public var declared: Int64?
        public var seconds: Double?
        /// Applies to the first `times` matching requests only.
        public var times: Int?

        public init(
            _ method: String? = nil, _ path: String, _ action: Action, status: Int? = nil,
            headers: [String: String]? = nil, body: String? = nil, declared: Int64? = nil, seconds: Double? = nil,
            times: Int? = nil
        ) {
            self.method = method
            self.path = path
            self.action = action
            self.status = status
            self.headers = headers
            self.body = body
            self.declared = declared
            self.seconds = seconds
            self.times = times
        }
    }

    /// A request the server received.
    public struct Request: Decodable, Sendable {
        public var method: String
        public var path: String
        public var auth: String?
        public var time: Double
    }

    public let directory: TemporaryDirectory
    public let port: Int
    let process: BackgroundProcess

    public var address: String { "127.0.0.1:\(port)" }
    public var url: String { "http://127.0.0.1:\(port)" }

    public init(rules: [Rule] = [], upstream: Int? = nil) throws {
        directory = try TemporaryDirectory("kiln-hostile")
        port = try freePort()
        try directory.write("server.py", Self.script)
        try directory.write("requests.log", "")
        process = try BackgroundProcess(
            [
                "python3", directory.path + "/server.py", String(port), directory.path + "/rules.json",
                String(upstream ?? 0), directory.path + "/requests.log",
            ], log: directory.path + "/server.log")
        try setRules(rules)
        try waitForPort(port)
    }

    public func setRules(_ rules: [Rule]) throws {
        let data = try JSONEncoder().encode(rules)
        try data.write(to: URL(fileURLWithPath: directory.path + "/rules.json.tmp"))
        _ = rename(directory.path + "/rules.json.tmp", directory.path + "/rules.json")
    }

    /// Every request so far, in arrival order.
    public var requests: [Request] {
        let text = (try? String(contentsOfFile: directory.path + "/requests.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Request.self, from: Data($0.utf8)) }
    }

    public var serverLog: String { process.log }

    public func stop() {
        process.stop()
        directory.remove()
    }

    static let script = #"""
        import http.client, json, re, socket, struct, sys, threading, time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        port, rules_path, upstream, log_path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
        counts, lock = {}, threading.Lock()

        def rules():
            try:
                with open(rules_path) as f:
                    return json.load(f)
            except Exception:
                return []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                auth = self.headers.get("Authorization")
                with lock:
                    with open(log_path, "a") as log:
                        log.write(json.dumps({"method": self.command, "path": self.path, "auth": auth,
                                              "time": time.time()}) + "\n")
                for i, rule in enumerate(rules()):
                    if rule.get("method") not in (None, self.command) or not re.search(rule["path"], self.path):
                        continue
                    with lock:
                        n = counts.get(i, 0)
                        counts[i] = n + 1
                    if rule.get("times") is not None and n >= rule["times"]:
                        continue
                    return self.act(rule, body, auth or "")
                if upstream:
                    return self.forward(body, None)
                self.reply(404, b'{"errors":[{"code":"NOT_FOUND","message":"no rule"}]}', {})

            def fill(self, text, auth):
                return text.replace("{auth}", auth).replace("{port}", str(port))

            def act(self, rule, body, auth):
                action = rule["action"]
                headers = {k: self.fill(v, auth) for k, v in (rule.get("headers") or {}).items()}
                if action == "reply":
                    data = self.fill(rule.get("body") or "", auth).encode()
                    return self.reply(rule.get("status") or 200, data, headers, rule.get("declared"))
                if action == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if action in ("stall", "trickle"):
                    self.send_response(rule.get("status") or 200)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(rule.get("declared") or 100))
                    self.end_headers()
                    self.wfile.flush()
                    if action == "stall":
                        time.sleep(rule.get("seconds") or 60)
                    else:
                        try:
                            for _ in range(int(rule.get("declared") or 100)):
                                self.wfile.write(b"x")
                                self.wfile.flush()
                                time.sleep(rule.get("seconds") or 1)
                        except Exception:
                            pass
                    self.close_connection = True
                    return
                if action == "corrupt":
                    return self.forward(body, "corrupt")
                if action == "stallMidway":
                    return self.forward(body, "stall", rule.get("seconds") or 60)

            def forward(self, body, mutate, seconds=0):
                conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if mutate == "corrupt" and data:
                    data = bytes([data[0] ^ 1]) + data[1:]
                skip = ("content-length", "connection", "transfer-encoding")
                extra = {k: v for k, v in response.getheaders() if k.lower() not in skip}
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                if mutate == "stall" and self.command == "GET":
                    self.send_response(response.status)
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    try:
                        self.wfile.write(data[:len(data) // 2])
                        self.wfile.flush()
                        time.sleep(seconds)
                    except Exception:
                        pass
                    self.close_connection = True
                    conn.close()
                    return
                # A HEAD's Content-Length is the truth: the connection stays open (closing it after every HEAD
                # made the client's next request race the close).
                self.reply(response.status, data, extra, length, lie=False)
                conn.close()

            def reply(self, status, data, headers, declared=None, lie=True):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(declared if declared is not None else len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    try:
                        self.wfile.write(data)
                    except Exception:
                        pass
                if declared is not None and lie:
                    self.close_connection = True

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

            def log_message(self, *args):
                pass

        ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
        """#
}

/// A port that accepts no connection: its one-slot backlog is filled, so a connect hangs until the client's
/// connect timeout (a firewalled or overloaded host).
public final class SilentPort: @unchecked Sendable {
    public let port: Int
    let process: BackgroundProcess
    let directory: TemporaryDirectory

    public init() throws {
        directory = try TemporaryDirectory("kiln-silent")
        port = try freePort()
        try directory.write(
            "silent.py",
            """
            import socket, sys, time
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", int(sys.argv[1])))
            listener.listen(0)
            held = []
            for _ in range(3):
                s = socket.socket()
                s.settimeout(0.3)
                try:
                    s.connect(("127.0.0.1", int(sys.argv[1])))
                    held.append(s)
                except OSError:
                    pass
            print("ready", flush=True)
            time.sleep(3600)
            """)
        process = try BackgroundProcess(
            ["python3", directory.path + "/silent.py", String(port)], log: directory.path + "/silent.log")
        let deadline = Date().addingTimeInterval(10)
        while !process.log.contains("ready") && Date() < deadline { usleep(50_000) }
    }

    public func stop() {
        process.stop()
        directory.remove()
    }
}
