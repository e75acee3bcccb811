import Foundation
import KilnOCI
import Testing

@testable import KilnRegistry

@Suite struct ReferenceTests {
    @Test(arguments: [
        ("busybox", "docker.io/library/busybox:latest"),
        ("library/debian:12", "docker.io/library/debian:12"),
        ("docker.io/komodo/komodod:0.9.0", "docker.io/komodo/komodod:0.9.0"),
        ("index.docker.io/x/y", "docker.io/x/y:latest"),
        ("localhost/a", "localhost/a:latest"),
        ("127.0.0.1:5000/ns/komodod:v1", "127.0.0.1:5000/ns/komodod:v1"),
        (
            "ghcr.io/org/img@sha256:" + String(repeating: "a", count: 64),
            "ghcr.io/org/img@sha256:" + String(repeating: "a", count: 64)
        ),
        ("reg.example.com:8443/a/b/c:1.2-rc_3", "reg.example.com:8443/a/b/c:1.2-rc_3"),
    ])
    func normalises(_ input: String, _ expected: String) throws {
        #expect(try Reference(parsing: input).description == expected)
    }

    @Test(arguments: [
        "", "UPPER/case", "a:", "a:-tag", "a@sha256:abc", "a//b", "a:" + String(repeating: "t", count: 129),
        "a:caf\u{E9}", "a:\u{0661}",
    ])
    func rejects(_ input: String) {
        #expect(throws: Reference.ParseError.self) { try Reference(parsing: input) }
    }

    @Test func parts() throws {
        let r = try Reference(parsing: "127.0.0.1:5000/ns/komodod:v1")
        #expect(r.registry == "127.0.0.1:5000" && r.repository == "ns/komodod" && r.tag == "v1" && r.isLoopback)
        #expect(try Reference(parsing: "busybox").host == "registry-1.docker.io")
    }

    @Test func challengeParsing() {
        let c = Challenge(
            parsing:
                #"Bearer realm="https://auth.example.com/token",service="registry",scope="repository:a:pull""#)
        #expect(c.scheme == "Bearer")
        #expect(
            c.parameters == [
                "realm": "https://auth.example.com/token", "service": "registry", "scope": "repository:a:pull",
            ])
        #expect(Challenge(parsing: #"Basic realm="kiln""#).scheme == "Basic")
    }

    /// Regression: distribution answers `Range: 0-0` when nothing arrived; resuming at 1 corrupted the blob.
    @Test func resumeOffsets() {
        #expect(RegistryClient.resumeOffset("0-0") == 0)
        #expect(RegistryClient.resumeOffset(nil) == 0)
        #expect(RegistryClient.resumeOffset("0-1048575") == 1_048_576)
        #expect(RegistryClient.resumeOffset("bytes=0-99") == 100)
    }

    @Test func credentialsNeverPrintTheSecret() {
        let c = Credential(username: "ci", secret: "hunter2")
        #expect(!"\(c)".contains("hunter2"))
        #expect(!String(reflecting: c).contains("hunter2"))
    }

    @Test func credentialSources() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-docker-\(UUID().uuidString)").path
        let store = CredentialStore(environment: ["DOCKER_CONFIG": dir, "HOME": "/nonexistent"])
        #expect(try store.credential(for: "r.example.com") == nil)
        try store.save(Credential(username: "u", secret: "p"), for: "r.example.com")
        #expect(try store.credential(for: "r.example.com") == Credential(username: "u", secret: "p"))
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/config.json")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // The environment wins (CI), limited to one host when KILN_REGISTRY_HOST is set.
        let env = CredentialStore(environment: [
            "DOCKER_CONFIG": dir, "KILN_REGISTRY_USERNAME": "ci", "KILN_REGISTRY_PASSWORD": "s",
            "KILN_REGISTRY_HOST": "other",
        ])
        #expect(try env.credential(for: "other") == Credential(username: "ci", secret: "s"))
        #expect(try env.credential(for: "r.example.com") == Credential(username: "u", secret: "p"))
        #expect(try store.remove(for: "r.example.com"))
        #expect(try store.credential(for: "r.example.com") == nil)
    }

    @Test func credentialHelperProtocol() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-helper-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        let helper = dir + "/bin/docker-credential-kilntest"
        try """
        #!/bin/sh
        read server
        [ "$1" = get ] && [ "$server" = "reg.example.com" ] && echo '{"ServerURL":"reg.example.com","Username":"helper-user","Secret":"helper-secret"}' && exit 0
        echo "credentials not found in native keychain"; exit 1
        """.write(toFile: helper, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: helper)
        try #"{"credHelpers": {"reg.example.com": "kilntest"}}"#.write(
            toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        // The helper is found on the PATH of the store's environment, not only of this process.
        let path = dir + "/bin:" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        var store = CredentialStore(environment: ["DOCKER_CONFIG": dir, "PATH": path])
        #expect(
            try store.credential(for: "reg.example.com") == Credential(username: "helper-user", secret: "helper-secret")
        )
        #expect(try store.credential(for: "other.example.com") == nil)

        // A helper that never answers is stopped at the time limit with an error naming it.
        try "#!/bin/sh\nsleep 600\n".write(toFile: helper, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: helper)
        store.helperTimeLimit = 1
        let started = Date()
        #expect(throws: CredentialError.self) { try store.credential(for: "reg.example.com") }
        #expect(Date().timeIntervalSince(started) < 20)
        do {
            _ = try store.credential(for: "reg.example.com")
        } catch {
            #expect("\(error)".contains("docker-credential-kilntest"))
            #expect("\(error)".contains("did not answer within 1 s"))
        }
    }
}
