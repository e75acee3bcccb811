import Foundation
import KilnTestSupport
import Testing

@testable import KilnHTTP

/// http_proxy / https_proxy / no_proxy as curl reads them, and requests through a real proxy (tinyproxy).
@Suite struct ProxySettingsTests {
    func settings(_ environment: [String: String]) throws -> ProxySettings {
        try ProxySettings(environment: environment)
    }

    func url(_ text: String) throws -> URL { try #require(URL(string: text)) }

    @Test func noProxyHostsSuffixesPortsAndAddresses() throws {
        let s = try settings([
            "http_proxy": "http://proxy:3128", "https_proxy": "proxy:3129",
            "no_proxy": " example.com, .internal.test ,registry:5000, 10.0.0.1, [::1]:8080",
        ])
        // Names match themselves and their subdomains, with or without the leading dot; never a longer name.
        #expect(s.bypasses(host: "example.com", port: 443))
        #expect(s.bypasses(host: "Mirror.EXAMPLE.com", port: 80))
        #expect(!s.bypasses(host: "notexample.com", port: 80))
        #expect(s.bypasses(host: "internal.test", port: 80))
        #expect(s.bypasses(host: "a.b.internal.test", port: 80))
        // A port limits the entry to that port.
        #expect(s.bypasses(host: "registry", port: 5000))
        #expect(!s.bypasses(host: "registry", port: 5001))
        // Addresses match literally, not as suffixes.
        #expect(s.bypasses(host: "10.0.0.1", port: 80))
        #expect(!s.bypasses(host: "110.0.0.1", port: 80))
        #expect(!s.bypasses(host: "10.0.0.10", port: 80))
        #expect(s.bypasses(host: "[::1]", port: 8080) && !s.bypasses(host: "::1", port: 80))
        // The scheme picks the proxy; a bypassed host gets none.
        #expect(s.proxy(for: try url("http://other:5000/v2/"))?.port == 3128)
        #expect(s.proxy(for: try url("https://other/v2/"))?.port == 3129)
        #expect(s.proxy(for: try url("https://mirror.example.com/")) == nil)
        #expect(s.proxy(for: try url("http://registry:5000/v2/")) == nil)
        #expect(s.proxy(for: try url("http://registry/v2/"))?.host == "proxy")
    }

    @Test func starBypassesEverythingAndLowerCaseWins() throws {
        let all = try settings(["HTTPS_PROXY": "http://proxy:1", "NO_PROXY": "*"])
        #expect(all.proxy(for: try url("https://anything/")) == nil)
        let both = try settings(["http_proxy": "http://lower:1", "HTTP_PROXY": "http://upper:2"])
        #expect(both.http?.host == "lower")
        let none = try settings(["HTTP_PROXY": "", "PATH": "/bin"])
        #expect(none.http == nil && none.https == nil)
        #expect(none.proxy(for: try url("http://x/")) == nil)
    }

    @Test func proxyCredentialsAreParsedAndNeverShown() throws {
        let s = try settings(["https_proxy": "http://ops:s%40cret@proxy.test:8080"])
        let proxy = try #require(s.https)
        #expect(proxy.username == "ops" && proxy.password == "s@cret" && proxy.port == 8080)
        #expect(!"\(proxy)".contains("cret") && "\(proxy)".contains("proxy.test:8080"))
        #expect(try settings(["http_proxy": "proxy"]).http?.port == 1080)
        // An unusable variable is named, its value (maybe a password) is not.
        let error = try #require(throws: ProxyError.self) {
            try settings(["https_proxy": "socks5://ops:hunter22@proxy:1080"])
        }
        #expect("\(error)".contains("$https_proxy") && !"\(error)".contains("hunter22"))
    }

    @Test func requestsGoThroughTinyproxyUnlessNoProxyNamesTheHost() async throws {
        try await withProxy(user: "kiln", password: "pr0xy-pw") { proxy in
            try await withHostileServer(rules: [.init("GET", "^/hello", .reply, body: "hi")]) { target in
                let proxied = try HTTPTransport(proxies: settings(["http_proxy": proxy.url]))
                let answer = try await proxied.send(HTTPRequest(.GET, try url("\(target.url)/hello")))
                await proxied.shutdown()
                #expect(answer.status == 200 && answer.body == Data("hi".utf8))
                // AsyncHTTPClient tunnels plain HTTP through CONNECT too.
                #expect(
                    proxy.requests.contains { $0.hasPrefix("CONNECT 127.0.0.1:\(target.port) ") }, "\(proxy.requests)")
                // Wrong proxy credentials: tinyproxy refuses the tunnel, so the right ones above were sent.
                let wrong = try HTTPTransport(
                    proxies: settings(["http_proxy": "http://kiln:nope@127.0.0.1:\(proxy.port)"]))
                let refused = await #expect(throws: HTTPError.self) {
                    try await wrong.send(HTTPRequest(.GET, try url("\(target.url)/hello")))
                }
                await wrong.shutdown()
                #expect("\(refused.map { "\($0)" } ?? "")".contains("the proxy refused"))
                #expect(!"\(refused.map { "\($0)" } ?? "")".contains("nope"))
                // no_proxy: straight to the server, the proxy sees nothing new.
                let before = proxy.requests.count
                let direct = try HTTPTransport(
                    proxies: settings(["http_proxy": proxy.url, "no_proxy": "127.0.0.1"]))
                let straight = try await direct.send(HTTPRequest(.GET, try url("\(target.url)/hello")))
                await direct.shutdown()
                #expect(straight.status == 200)
                #expect(proxy.requests.count == before)
            }
        }
    }
}
