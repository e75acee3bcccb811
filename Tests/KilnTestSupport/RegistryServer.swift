import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A free TCP port on 127.0.0.1 (bound and released; good enough for a test that starts its server at once).
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Waits until something accepts TCP connections on 127.0.0.1:port.
public func waitForPort(_ port: Int, timeout: TimeInterval = 20) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        close(fd)
        if ok == 0 { return }
        usleep(50_000)
    }
    throw CommandFailed(
        command: ["wait for port \(port)"],
        result: CommandResult(status: 1, stdout: "", stderr: "nothing listens after \(timeout)s"))
}

/// A background process started by a test and stopped by PID.
public final class BackgroundProcess: @unchecked Sendable {
    public let pid: pid_t
    public let logPath: String
    private var stopped = false

    public init(_ arguments: [String], log: String, environment: [String: String] = [:]) throws {
        logPath = log
        pid = try ChildProcess.spawn(arguments, environment: environment, stdout: log, stderr: log)
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    public func stop() {
        guard !stopped else { return }
        stopped = true
        kill(pid, SIGKILL)
        _ = ChildProcess.wait(pid)
    }

    deinit { stop() }
}

/// A real CNCF distribution registry (Debian's docker-registry) on 127.0.0.1, with its own config and storage,
/// optionally with Basic auth (htpasswd), TLS (a self-signed CA made here) or bearer tokens from `TokenServer`.
public final class RegistryServer: @unchecked Sendable {
    public enum Auth: Sendable {
        case none
        case basic(user: String, password: String)
        case token(TokenServer)
    }

    public let directory: TemporaryDirectory
    public let port: Int
    public let process: BackgroundProcess
    /// The CA certificate (PEM) clients must trust when TLS is on.
    public let caFile: String?

    public var address: String { "127.0.0.1:\(port)" }
    public var log: String { process.log }

    /// `deletes: false` configures a registry that refuses the delete API (as docker-registry does by default).
    public init(auth: Auth = .none, tls: Bool = false, deletes: Bool = true) throws {
        directory = try TemporaryDirectory("kiln-registry")
        port = try freePort()
        var config = """
            version: 0.1
            log:
              level: info
              accesslog:
                disabled: false
            storage:
              filesystem:
                rootdirectory: \(directory.path)/data
              delete:
                enabled: \(deletes)
            http:
              addr: 127.0.0.1:\(port)
              secret: kiln-test-secret

            """
        if tls {
            let tlsFiles = try Certificates.make(in: directory.path, name: "registry")
            config += "  tls:\n    certificate: \(tlsFiles.cert)\n    key: \(tlsFiles.key)\n"
            caFile = tlsFiles.cert
        } else {
            caFile = nil
        }
        switch auth {
        case .none: break
        case .basic(let user, let password):
            try Shell.run(["htpasswd", "-Bbc", directory.path + "/htpasswd", user, password])
            config += "auth:\n  htpasswd:\n    realm: kiln-test\n    path: \(directory.path)/htpasswd\n"
        case .token(let server):
            config += """
                auth:
                  token:
                    realm: http://127.0.0.1:\(server.port)/token
                    service: kiln-test
                    issuer: kiln-test-issuer
                    rootcertbundle: \(server.certificate)

                """
        }
        try directory.write("config.yml", config)
        process = try BackgroundProcess(
            ["docker-registry", "serve", directory.path + "/config.yml"], log: directory.path + "/registry.log")
        try waitForPort(port)
    }

    /// Requests the registry logged for blob upload bodies (PATCH, or PUT with content).
    public var uploadRequests: Int {
        log.split(separator: "\n").filter { line in
            (line.contains("\"PATCH /v2/") || line.contains("\"PUT /v2/")) && line.contains("/blobs/uploads/")
        }.count
    }

    /// Upload bodies the registry logged per blob: the final PUT of each upload names its digest.
    public func uploads(of digest: String) -> Int {
        log.split(separator: "\n").filter { line in
            line.contains("\"PUT /v2/") && line.contains("/blobs/uploads/")
                && (line.contains("digest=\(digest)")
                    || line.contains("digest=" + digest.replacingOccurrences(of: ":", with: "%3A")))
        }.count
    }

    /// Access-log lines of requests, in order (method and path), to check what came before what.
    public var requests: [String] {
        log.split(separator: "\n").compactMap { line in
            guard
                let start = line.range(of: "\"GET /v2/") ?? line.range(of: "\"PUT /v2/")
                    ?? line.range(of: "\"HEAD /v2/") ?? line.range(of: "\"POST /v2/") ?? line.range(of: "\"PATCH /v2/")
            else { return nil }
            let rest = line[line.index(after: start.lowerBound)...]
            return rest.split(separator: " ").prefix(2).joined(separator: " ")
        }
    }

    /// Empties the registry's storage while it runs (as a CI registry thrown away and recreated at the same
    /// address, or a garbage-collected one): every repository and blob is gone.
    public func empty() throws {
        try FileManager.default.removeItem(atPath: directory.path + "/data")
    }

    public func stop() {
        process.stop()
        directory.remove()
    }
}

/// Self-signed certificates for tests (openssl), valid for 127.0.0.1 and localhost.
public enum Certificates {
    public static func make(in directory: String, name: String) throws -> (cert: String, key: String) {
        let cert = "\(directory)/\(name).crt"
        let key = "\(directory)/\(name).key"
        try Shell.run([
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=kiln-test",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert,
        ])
        return (cert, key)
    }
}

/// A small bearer-token server (python3 + openssl) implementing the distribution token flow: Basic
/// credentials in, a JWT signed RS256 with its certificate in the `x5c` header out, granting what was asked.
public final class TokenServer: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let port: Int
    public let certificate: String
    let process: BackgroundProcess

    public var log: String { process.log }

    public init(user: String, password: String) throws {
        directory = try TemporaryDirectory("kiln-token")
        port = try freePort()
        let files = try Certificates.make(in: directory.path, name: "token")
        certificate = files.cert
        try directory.write("server.py", Self.script)
        process = try BackgroundProcess(
            ["python3", directory.path + "/server.py", String(port), files.cert, files.key, user, password],
            log: directory.path + "/token.log")
        try waitForPort(port)
    }

    public func stop() {
        process.stop()
        directory.remove()
    }

    static let script = #"""
        import base64, json, subprocess, sys, time, uuid
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlparse, parse_qs

        port, cert, key, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
        der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], capture_output=True, check=True).stdout

        def b64(data):
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        def sign(claims):
            header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
            signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
            sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input.encode(),
                                 capture_output=True, check=True).stdout
            return signing_input + "." + b64(sig)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                query = parse_qs(url.query)
                expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.end_headers()
                    self.wfile.write(b'{"details":"bad credentials"}')
                    return
                access = []
                for scope in query.get("scope", []):
                    for item in scope.split(" "):
                        kind, name, actions = item.split(":")
                        access.append({"type": kind, "name": name, "actions": actions.split(",")})
                now = int(time.time())
                token = sign({"iss": "kiln-test-issuer", "sub": user, "aud": query.get("service", [""])[0],
                              "exp": now + 300, "nbf": now - 10, "iat": now, "jti": str(uuid.uuid4()), "access": access})
                body = json.dumps({"token": token, "expires_in": 300}).encode()
                # Logged before the answer: a test reading the log once its client has the token must find it.
                print("token for", query.get("scope"), flush=True)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
        """#
}
