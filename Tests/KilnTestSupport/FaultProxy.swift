import Foundation

/// A misbehaving HTTP proxy between Kiln and a real registry (python3): it answers the first blob HEAD with
/// 429 + Retry-After, the first upload start with 500, cuts the connection halfway through the first PATCH
/// and the first monolithic blob PUT, and delays every answer (a slow server). Everything else is forwarded.
public final class FaultProxy: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let port: Int
    let process: BackgroundProcess

    public var address: String { "127.0.0.1:\(port)" }
    public var log: String { process.log }

    /// Random faults instead of the scripted ones: each request (the first connection check included) is
    /// reset with probability `reset`, answered 500 with `error500`, 429 with `error429`, drawn from a
    /// generator seeded with `seed` (with one job at a time the run is the same every time).
    public struct Rates: Sendable {
        public var reset: Double
        public var error500: Double
        public var error429: Double
        public var seed: Int
        public init(reset: Double, error500: Double, error429: Double, seed: Int) {
            self.reset = reset
            self.error500 = error500
            self.error429 = error429
            self.seed = seed
        }
    }

    public init(upstream: Int, delay: Double = 0.02, rates: Rates? = nil) throws {
        directory = try TemporaryDirectory("kiln-proxy")
        port = try freePort()
        try directory.write("proxy.py", Self.script)
        let random = rates.map { ["\($0.reset)", "\($0.error500)", "\($0.error429)", "\($0.seed)"] } ?? []
        process = try BackgroundProcess(
            ["python3", directory.path + "/proxy.py", String(port), String(upstream), String(delay)] + random,
            log: directory.path + "/proxy.log")
        try waitForPort(port)
    }

    /// How many faults of each kind were injected (random mode).
    public var injected: (resets: Int, errors500: Int, errors429: Int) {
        let lines = log.split(separator: "\n")
        return (
            lines.filter { $0.hasPrefix("fault: reset") }.count, lines.filter { $0.hasPrefix("fault: 500") }.count,
            lines.filter { $0.hasPrefix("fault: 429") }.count
        )
    }

    public func stop() {
        process.stop()
        directory.remove()
    }

    static let script = #"""
        import http.client, random, socket, struct, sys, time, threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        port, upstream, delay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
        rates = [float(x) for x in sys.argv[4:7]] if len(sys.argv) > 7 else None
        rng = random.Random(int(sys.argv[7])) if rates else None
        done = set()
        lock = threading.Lock()

        def draw():
            with lock:
                return rng.random()

        def once(name):
            with lock:
                if name in done:
                    return False
                done.add(name)
                return True

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                path = self.path
                time.sleep(delay)
                if rates:
                    r = draw()
                    if r < rates[0]:
                        half = self.rfile.read(length // 2) if length else b""
                        print("fault: reset during", self.command, path, flush=True)
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.connection.close()
                        self.close_connection = True
                        return
                    if r < rates[0] + rates[1] + rates[2]:
                        self.rfile.read(length)
                        status = 500 if r < rates[0] + rates[1] else 429
                        print("fault:", status, "on", self.command, path, flush=True)
                        return self.reply(status, b'{"errors":[{"code":"UNKNOWN","message":"injected"}]}', {},
                                          head=self.command == "HEAD")
                    return self.forward(length, path)
                if self.command == "HEAD" and "/blobs/" in path and once("429"):
                    print("fault: 429 on", path, flush=True)
                    return self.reply(429, b"", {"Retry-After": "1"})
                if self.command == "POST" and "/blobs/uploads/" in path and "mount=" not in path and once("500"):
                    self.rfile.read(length)
                    print("fault: 500 on", path, flush=True)
                    return self.reply(500, b'{"errors":[{"code":"UNKNOWN","message":"injected"}]}', {})
                cut = (self.command == "PATCH" and once("reset-patch")) or \
                      (self.command == "PUT" and "/blobs/uploads/" in path and length > 0 and once("reset-put"))
                if cut:
                    # Forward half of the body, then reset the client connection (RST, not FIN).
                    half = self.rfile.read(length // 2)
                    print("fault: reset during", self.command, path, "after", len(half), "bytes", flush=True)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                self.forward(length, path)

            def forward(self, length, path):
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                conn.request(self.command, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                extra = {k: v for k, v in response.getheaders() if k.lower() not in ("content-length", "connection", "transfer-encoding")}
                self.reply(response.status, data, extra, head=self.command == "HEAD",
                           length=response.getheader("Content-Length"))
                conn.close()

            def reply(self, status, data, headers, head=False, length=None):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", length if head and length else str(len(data)))
                self.end_headers()
                if not head:
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

            def log_message(self, *args):
                pass

        ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
        """#
}
