import Foundation
import KilnOCI
import KilnRegistry
import KilnStore
import KilnTestSupport
import Testing

/// Push publishes each image's SPDX SBOM where OCI 1.1 readers (oras, cosign, trivy) look. docker-registry 2.8
/// has no referrers API, so the SBOM is found the fallback way: the tag `sha256-<image digest>` names an index
/// of the image's referrers. Read here with curl, as a small independent client.
@Suite(.serialized) struct SBOMPublishTests {
    static let packages: [DebianRepository.Package] = [
        .init("app", "1.0", fields: ["Depends": "libfoo"], files: ["/usr/bin/app": "x:#!/bin/sh\necho app\n"]),
        .init("libfoo", "1.3", fields: ["Source": "foo"]),
    ]

    func get(_ url: String, accept: String) throws -> (status: Int, body: Data) {
        let result = try Shell.run([
            "curl", "-s", "-H", "Accept: \(accept)", "-w", "\n%{http_code}", url,
        ])
        var lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.removeLast()) ?? 0
        return (status, Data(lines.joined(separator: "\n").utf8))
    }

    func object(_ data: Data) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    /// Serves `repository` and builds `debimg:1` (one package set, so it has an SBOM) into `tmp/images`.
    func buildImage(_ tmp: TemporaryDirectory, _ repository: DebianRepository) throws -> String {
        try repository.serve()
        try tmp.write(
            "recipes/deb.yaml",
            """
            name: debimg
            version: "1"
            layers:
              - name: runtime
                packages:
                  suite: \(repository.suite)
                  mirror: \(repository.url)
                  keyring: \(repository.keyring)
                  packages: [app]
            entrypoint: [/usr/bin/app]
            """)
        let store = tmp.path + "/images"
        try KilnBinary.run(
            ["build", tmp.path + "/recipes", "--store", store], environment: ["KILN_CACHE_DIR": tmp.path + "/cache"])
        return store
    }

    @Test func pushPublishesTheSBOMUnderTheFallbackTag() async throws {
        let repository = try DebianRepository(packages: Self.packages)
        defer { repository.stop() }
        try await withRegistry(scratch: "kiln-sbompush") { registry, tmp in
            let store = try buildImage(tmp, repository)

            // inspect --sbom prints the SPDX document.
            let local = try KilnBinary.run(["inspect", "--sbom", "debimg:1", "--store", store]).stdout
            let spdx = try object(Data(local.utf8))
            #expect((spdx["spdxVersion"] as? String)?.hasPrefix("SPDX-") == true)
            let names = Set((spdx["packages"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String })
            #expect(names.isSuperset(of: ["app", "libfoo"]))

            let pushed = try KilnBinary.run([
                "push", "debimg", "--to", "\(registry.address)/ns", "--store", store, "--json",
            ])
            let items = try object(Data(pushed.stdout.utf8))["images"] as? [[String: Any]] ?? []
            let image = try #require(items.first?["digest"] as? String)
            // Referrers are descriptors, as `kiln manifest --json` and the referrers API give them.
            let listed = try #require(items.first?["referrers"] as? [[String: Any]])
            #expect(listed.count == 1)
            #expect(listed.first?["artifactType"] as? String == "application/spdx+json")

            // The registry has no referrers API; the fallback tag names an index of the SBOM artifact.
            let base = "http://\(registry.address)/v2/ns/debimg"
            #expect(try get("\(base)/referrers/\(image)", accept: MediaType.imageIndex).status == 404)
            let tag = "sha256-" + image.dropFirst("sha256:".count)
            let (status, indexData) = try get("\(base)/manifests/\(tag)", accept: MediaType.imageIndex)
            #expect(status == 200)
            let index = try object(indexData)
            #expect(index["mediaType"] as? String == MediaType.imageIndex)
            let entry = try #require((index["manifests"] as? [[String: Any]])?.first)
            #expect(entry["artifactType"] as? String == "application/spdx+json")
            let artifactDigest = try #require(entry["digest"] as? String)
            let artifact = try object(
                try get("\(base)/manifests/\(artifactDigest)", accept: MediaType.imageManifest).body)
            #expect((artifact["subject"] as? [String: Any])?["digest"] as? String == image)
            let layer = try #require((artifact["layers"] as? [[String: Any]])?.first?["digest"] as? String)
            let document = try get("\(base)/blobs/\(layer)", accept: "*/*").body
            #expect(String(decoding: document, as: UTF8.self) == local.trimmingCharacters(in: .newlines))

            // A second push changes nothing; `kiln manifest --json` lists the SBOM; copy takes it along.
            let tagDigest = try Oracles.remoteDigest("\(registry.address)/ns/debimg:\(tag)")
            try KilnBinary.run(["push", "debimg", "--to", "\(registry.address)/ns", "--store", store])
            #expect(try Oracles.remoteDigest("\(registry.address)/ns/debimg:\(tag)") == tagDigest)
            let remote = try object(
                Data(try KilnBinary.run(["manifest", "\(registry.address)/ns/debimg:1", "--json"]).stdout.utf8))
            #expect((remote["referrers"] as? [[String: Any]])?.first?["digest"] as? String == artifactDigest)
            try KilnBinary.run(["copy", "\(registry.address)/ns/debimg:1", "\(registry.address)/prod/debimg"])
            #expect(try Oracles.remoteDigest("\(registry.address)/prod/debimg:\(tag)") == tagDigest)
            #expect(try Oracles.remoteDigest("\(registry.address)/prod/debimg@\(artifactDigest)") == artifactDigest)

            // kiln release publishes it the same way.
            try KilnBinary.run(
                ["release", "1", "--to", "\(registry.address)/rel", "--store", store], directory: tmp.path)
            #expect(try Oracles.remoteDigest("\(registry.address)/rel/debimg:\(tag)") == tagDigest)

            // Untagging the image drops its SBOM entry too, so gc can free both.
            try KilnBinary.run(["untag", "debimg:1", "--store", store])
            try KilnBinary.run(["gc", "--grace", "0", "--store", store])
            #expect(!FileManager.default.fileExists(atPath: store + "/blobs/sha256/" + artifactDigest.dropFirst(7)))
            #expect(!FileManager.default.fileExists(atPath: store + "/blobs/sha256/" + image.dropFirst(7)))

            // An image without packages has no SBOM: a clear error.
            try KilnBinary.run(["build", PushPullTests.golden, "--store", store])
            let none = try KilnBinary.run(["inspect", "--sbom", "golden-base:1.0.0", "--store", store], check: false)
            #expect(none.status != 0)
            #expect(none.stderr.contains("has no SBOM"))
        }
    }

    /// Where the registry answers the referrers API (OCI 1.1) with the SBOM listed, push relies on it and
    /// writes no fallback tag. docker-registry 2.8 has no such API, so a proxy in front of it answers the
    /// referrers request as an OCI 1.1 registry would once it has indexed the pushed artifact.
    @Test func pushUsesTheReferrersAPIWhereTheRegistryAnswersIt() async throws {
        let repository = try DebianRepository(packages: Self.packages)
        defer { repository.stop() }
        try await withRegistry(scratch: "kiln-sbomapi") { registry, tmp in
            let store = try buildImage(tmp, repository)
            let layout = try OCILayout(root: store)
            let image = try layout.resolve("debimg:1")
            let sbom = try #require(try layout.referrers(of: image.digest).first)
            var listed = sbom
            listed.annotations = nil
            var index = ImageIndex(manifests: [listed])
            index.mediaType = MediaType.imageIndex
            let answer = String(decoding: try CanonicalJSON.encode(index), as: UTF8.self)
            try await withHostileServer(
                rules: [
                    .init(
                        "GET", "^/v2/ns/debimg/referrers/\(image.digest)$", .reply, status: 200,
                        headers: ["Content-Type": MediaType.imageIndex], body: answer)
                ], upstream: registry.port
            ) { api in

                try KilnBinary.run(["push", "debimg", "--to", "\(api.address)/ns", "--store", store])
                #expect(api.requests.contains { $0.path.hasSuffix("/referrers/\(image.digest)") })
                #expect(
                    try Oracles.remoteDigest("\(registry.address)/ns/debimg@\(sbom.digest)") == sbom.digest.description)
                let fallback = try get(
                    "http://\(registry.address)/v2/ns/debimg/manifests/\(Referrers.fallbackTag(image.digest))",
                    accept: MediaType.imageIndex)
                #expect(fallback.status == 404, "a fallback tag was written although the referrers API lists the SBOM")
            }
        }
    }
}
