import Foundation
import KilnOCI
import KilnRegistry
import KilnTestSupport
import Testing

@testable import KilnSign

/// `kiln verify --key` checks each image manifest's provenance attestation beside its signatures, against a real
/// docker-registry: present, DSSE-signed by the key, naming the manifest's digest as its subject.
@Suite(.serialized) struct ProvenanceVerifyTests {
    typealias Oracle = SignatureOracleTests

    /// A SLSA provenance v1 statement about `subject`.
    static func statement(about subject: Digest) throws -> Data {
        try CanonicalJSON.encode(
            InTotoStatement(
                subject: [.init(name: "one", digest: subject)],
                predicateType: SLSAProvenance<EmptyObject>.predicateType,
                predicate: SLSAProvenance(
                    buildType: "urn:test:build", externalParameters: EmptyObject(), resolvedDependencies: [],
                    builderID: "urn:test:builder", builderVersion: [:])))
    }

    /// Attaches a provenance statement about `about` (default: the manifest itself) to `tag`'s manifest, or to
    /// each platform manifest of an index.
    static func attest(
        _ client: RegistryClient, _ repository: String, key: PrivateKey, about other: Digest? = nil
    ) async throws {
        let (data, top) = try await client.manifest(repository, "1")
        var manifests = [top]
        if MediaType.indexTypes.contains(top.mediaType) {
            manifests = try JSONDecoder().decode(ImageIndex.self, from: data).manifests
        }
        for manifest in manifests {
            let subject = Descriptor(mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size)
            try await AttestationPublisher(client: client, key: key).attach(
                statement: try statement(about: other ?? manifest.digest),
                predicateType: SLSAProvenance<EmptyObject>.predicateType, to: subject, in: repository)
        }
    }

    /// Rewrites the subject digest inside the attestation's envelope, keeping its signature.
    static func tamperSubject(_ client: RegistryClient, _ repository: String, to other: Digest) async throws {
        let attachments = Attachments(client: client)
        let (_, top) = try await client.manifest(repository, "1")
        var manifest = try #require(try await attachments.manifest(repository, top.digest, .attestation))
        var envelope = try JSONDecoder().decode(
            DSSEEnvelope.self, from: try await attachments.blob(repository, manifest.layers[0]))
        let body = String(decoding: try #require(envelope.body), as: UTF8.self)
            .replacingOccurrences(of: top.digest.encoded, with: other.encoded)
        envelope.payload = Data(body.utf8).base64EncodedString()
        let data = try CanonicalJSON.encode(envelope)
        manifest.layers[0].digest = try await attachments.put(repository, data)
        manifest.layers[0].size = Int64(data.count)
        try await client.putManifest(
            repository, CosignLayout.tag(top.digest, .attestation), data: try CanonicalJSON.encode(manifest),
            mediaType: MediaType.imageManifest)
    }

    @Test func verifyKeyRequiresAValidProvenanceAttestation() async throws {
        try await withRegistry(directory: "kiln-attest") { registry, tmp in
            let layout = try Oracle.makeStore(tmp)
            let r = registry.address
            let names = ["attested", "unattested", "wrongkey", "tampered", "replayed"]
            try await Oracle.push(
                layout, names.map { ("one:1", "a/\($0)") } + [("multi:1", "a/multi")], to: registry)
            let key = tmp.path + "/release"
            try Oracle.kiln(["key", "generate", key])
            try Oracle.kiln(["key", "generate", tmp.path + "/other"])
            try Oracle.kiln(["sign"] + (names + ["multi"]).map { "\(r)/a/\($0):1" } + ["--key", key + ".key"])
            let password = Array(Oracle.password.utf8)
            let release = try EncryptedKey.load(path: key + ".key", password: password)
            let other = try EncryptedKey.load(path: tmp.path + "/other.key", password: password)
            let two = try layout.resolve("two:1").digest
            try await Oracle.withClient(registry) { client in
                for name in ["attested", "tampered", "multi"] {
                    try await Self.attest(client, "a/\(name)", key: release)
                }
                try await Self.attest(client, "a/wrongkey", key: other)
                // A valid attestation, but of another image (copied onto this one).
                try await Self.attest(client, "a/replayed", key: release, about: two)
                try await Self.tamperSubject(client, "a/tampered", to: two)
            }

            func verify(_ name: String, _ extra: [String] = []) throws -> CommandResult {
                try Oracle.kiln(["verify", "\(r)/a/\(name):1", "--key", key + ".pub"] + extra, check: false)
            }
            for name in ["attested", "multi"] {
                let passed = try verify(name)
                #expect(passed.status == 0, "\(name): \(passed.stdout)\(passed.stderr)")
                #expect(passed.stdout.contains("provenance: valid"), "\(passed.stdout)")
            }
            let refused: [(name: String, status: String, why: String)] = [
                ("unattested", "missing", "signed but not attested"),
                ("wrongkey", "invalid", "does not verify under the given key"),
                ("tampered", "invalid", "does not verify under the given key"),
                ("replayed", "invalid", "not this manifest"),
            ]
            for (name, status, why) in refused {
                let result = try verify(name)
                #expect(result.status == 1, "\(name): \(result.stdout)\(result.stderr)")
                #expect(
                    result.stdout.contains("NOT VERIFIED") && result.stdout.contains("provenance: \(status)")
                        && result.stdout.contains(why), "\(name): \(result.stdout)")
            }
            // Signed but not attested: the signature itself is valid, and --signatures-only accepts it.
            let json = try verify("unattested", ["--json"])
            let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
            let check = try #require((report["manifests"] as? [[String: Any]])?.first)
            #expect(report["verified"] as? Bool == false)
            #expect(check["status"] as? String == "valid" && check["provenance"] as? String == "missing")
            #expect(try verify("unattested", ["--signatures-only"]).status == 0)
            // The index has no attestation of its own; each platform's is checked.
            let multi = try verify("multi", ["--json"])
            let checks = try #require(
                (try JSONSerialization.jsonObject(with: Data(multi.stdout.utf8)) as? [String: Any])?["manifests"]
                    as? [[String: Any]])
            #expect(checks.count == 3 && checks[0]["provenance"] == nil)
            #expect(checks.dropFirst().allSatisfy { $0["provenance"] as? String == "valid" })
        }
    }
}
