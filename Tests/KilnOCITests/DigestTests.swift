import Foundation
import Testing

@testable import KilnOCI

@Suite struct DigestTests {
    @Test func sha256OfKnownInputs() {
        #expect(
            Digest.sha256("").description
                == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            Digest.sha256("{}").description
                == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
    }

    @Test func incrementalEqualsOneShot() {
        var h = SHA256()
        h.update(Data("hello ".utf8))
        h.update(Data("world".utf8))
        #expect(h.finalize() == Digest.sha256("hello world"))
    }

    @Test func rejectsMalformedDigests() {
        for bad in ["", "sha256", "sha256:", "sha256:ABC", "sha256:" + String(repeating: "A", count: 64), "SHA256:00"] {
            #expect(throws: Digest.ParseError.self) { try Digest(parsing: bad) }
        }
        #expect((try? Digest(parsing: "sha512:" + String(repeating: "a", count: 128))) != nil)
    }

    @Test func canonicalJSONSortsKeysAndKeepsSlashes() throws {
        var config = ImageConfig(platform: .linuxAMD64)
        var exec = ImageConfig.ExecutionConfig()
        exec.exposedPorts = ["7770/tcp": EmptyObject()]
        exec.workingDir = "/home/komodo"
        config.config = exec
        let json = String(decoding: try CanonicalJSON.encode(config), as: UTF8.self)
        #expect(
            json
                == #"{"architecture":"amd64","config":{"ExposedPorts":{"7770/tcp":{}},"WorkingDir":"/home/komodo"},"os":"linux","rootfs":{"diff_ids":[],"type":"layers"}}"#
        )
    }

    @Test func timestamps() {
        #expect(Timestamp.rfc3339(epochSeconds: 0) == "1970-01-01T00:00:00Z")
        #expect(Timestamp.rfc3339(epochSeconds: 1_700_000_000) == "2023-11-14T22:13:20Z")
        #expect(Timestamp.sourceDateEpoch(environment: ["SOURCE_DATE_EPOCH": "42"]) == 42)
        #expect(Timestamp.sourceDateEpoch(environment: ["SOURCE_DATE_EPOCH": "x"]) == 0)
    }
}
