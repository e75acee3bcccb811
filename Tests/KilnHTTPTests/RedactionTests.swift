import Foundation
import Testing

@testable import KilnHTTP

/// Secrets in URLs and headers (query tokens, passwords, bearer tokens) never reach a message.
@Suite struct RedactionTests {
    /// Query tokens (an upload's `_state`, signed URLs) and passwords in URLs never reach a message; digests do.
    @Test func queryTokensAreRedactedFromMessages() {
        let url = "https://r.example:5000/v2/ns/app/blobs/uploads/9f1?_state=c2VjcmV0&digest=sha256:abcd"
        #expect(
            Redaction.redact("PUT \(url) failed")
                == "PUT https://r.example:5000/v2/ns/app/blobs/uploads/9f1?_state=<redacted>&digest=sha256:abcd failed")
        #expect(
            Redaction.redact("see https://ci:hunter22@r.example/x?X-Amz-Signature=f00&n=10#frag")
                == "see https://ci:<redacted>@r.example/x?X-Amz-Signature=<redacted>&n=10#frag")
        #expect(Redaction.redact("Authorization: Bearer abc.def.ghi") == "Authorization: Bearer <redacted>")
        #expect(Redaction.redact("no url here") == "no url here")
        #expect(Redaction.redact("asked for a bearer token") == "asked for a bearer token", "words stay")
        // Text that skips the regexes (no scheme word, no URL) is returned as is; any case of the scheme, and any
        // text beyond ASCII, still goes through them.
        #expect(Redaction.redact("  ns/app 1b830bbb: uploaded 4 kB") == "  ns/app 1b830bbb: uploaded 4 kB")
        #expect(Redaction.redact("echo: BeArEr Zm9vYmFy") == "echo: BeArEr <redacted>")
        #expect(
            Redaction.redact("échec: Basic Zm9vOmJhcg== à https://r/x?t=1")
                == "échec: Basic <redacted> à https://r/x?t=<redacted>")
        for error in [
            HTTPError.status(url: url, status: 500, body: "failed at \(url)"),
            .dropped(url: url, detail: "the connection was reset"),
            .timeout(url: url, what: "the whole exchange", seconds: 1),
            .gaveUp(
                attempts: 3, seconds: 2, last: .connection(url: url, detail: "x", transient: true),
                first: .dropped(url: url, detail: "y")),
        ] {
            #expect(!error.description.contains("c2VjcmV0"), "\(error)")
            #expect(error.description.contains("digest=sha256:abcd"), "\(error)")
        }
    }
}
