import Foundation
import Testing

@testable import KilnHTTP

/// Errors from the HTTP stack as a person reads them: what failed, without the dependencies' source paths.
@Suite struct HTTPFailureTests {
    @Test func errorsDropDependencySourcePaths() {
        let raw =
            "handshakeFailed(NIOSSL.BoringSSLError.sslError([Error: 268435703 error:100000f7:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER at /work/main/.build/checkouts/swift-nio-ssl/Sources/CNIOBoringSSL/ssl/tls_record.cc:127]))"
        let clean = HTTPTransport.clean(raw)
        #expect(!clean.contains("/work/main") && !clean.contains("tls_record.cc"), "\(clean)")
        #expect(clean.contains("WRONG_VERSION_NUMBER"))
    }

    @Test func aFullDiskIsADiskErrorNotANetworkOne() throws {
        let url = try #require(URL(string: "http://mirror.test/pool/a.deb"))
        let full = NSError(
            domain: NSCocoaErrorDomain, code: NSFileWriteOutOfSpaceError,
            userInfo: [NSUnderlyingErrorKey: NSError(domain: NSPOSIXErrorDomain, code: Int(ENOSPC))])
        let mapped = HTTPTransport.map(full, url: url, options: HTTPOptions())
        guard case .file = mapped else {
            Issue.record("a full disk was reported as \(mapped)")
            return
        }
        #expect(mapped.description.contains("disk is full"))
        #expect(!mapped.description.contains("cannot reach"))
        #expect(!mapped.isTransient)
    }
}
