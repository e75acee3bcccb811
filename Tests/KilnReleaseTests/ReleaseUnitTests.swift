import Foundation
import KilnLayer
import KilnOCI
import KilnRelease
import KilnTestSupport
import Testing
import Yams

/// The pure parts of releases: digests, documents, rendering, layer comparison.
struct ReleaseUnitTests {
    @Test func recipesDigestMatchesTheDocumentedShellPipeline() async throws {
        try await withTemporaryDirectory("kiln-recipes-digest") { tmp in
            try tmp.write("recipes/a.yaml", "name: a\n")
            try tmp.write("recipes/files/B.txt", "b\n")
            try tmp.write("recipes/files/sub dir/c", "c\n")
            try Shell.run(["ln", "-s", "a.yaml", tmp.path + "/recipes/link.yaml"])
            let ours = try #require(try RecipeDigest.directory(tmp.path + "/recipes"))
            let shell = try Shell.run(
                [
                    "sh", "-c",
                    "(cd recipes && find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum) | sha256sum",
                ], directory: tmp.path
            ).stdout
            #expect("sha256:" + shell.prefix(64) == ours.description)
            try tmp.write("recipes/files/B.txt", "changed\n")
            #expect(try RecipeDigest.directory(tmp.path + "/recipes") != ours)
            #expect(try RecipeDigest.directory(tmp.path + "/absent") == nil)
        }
    }

    @Test func documentBytesAreDeterministicAndRoundTrip() throws {
        let digest = Digest.sha256("x")
        let images = ["b", "a"].map {
            ReleaseDocument.Image(
                name: $0, repository: "ns/\($0)", reference: "r/ns/\($0)@\(digest)", digest: digest,
                mediaType: MediaType.imageManifest, tags: ["1"], platforms: nil)
        }
        let document = ReleaseDocument(
            version: "1", created: "2023-11-14T22:13:20Z", revision: nil, recipesDigest: digest, lockDigest: nil,
            registry: "r", namespace: "ns", movingTags: ["stable"], images: images)
        #expect(document.images.map(\.name) == ["a", "b"], "images are sorted by name")
        let bytes = try document.encoded()
        #expect(try document.encoded() == bytes)
        #expect(try ReleaseDocument.decode(bytes, source: "test") == document)
        #expect(!String(decoding: bytes, as: UTF8.self).contains("revision"), "absent fields are left out")
        // The artifact manifest carries the document as its one layer, with the empty config.
        let manifest = ReleaseArtifact.manifest(for: bytes, version: "1", created: document.created)
        #expect(manifest.artifactType == ReleaseDocument.mediaType)
        #expect(
            manifest.config.digest.description
                == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
        #expect(manifest.config.data == "e30=")
        #expect(manifest.layers.map(\.digest) == [Digest.sha256(bytes)])
    }

    @Test func releaseArtifactRepositories() throws {
        #expect(ReleaseArtifact.repository(namespace: "") == "kiln-releases")
        #expect(ReleaseArtifact.repository(namespace: "ns") == "ns/kiln-releases")
    }

    @Test func composeAndKubernetesNamesAreValid() throws {
        var exec = ImageConfig.ExecutionConfig()
        exec.exposedPorts = ["7771/tcp": EmptyObject(), "7770": EmptyObject(), "bogus": EmptyObject()]
        exec.volumes = ["/home/komodo/.komodo": EmptyObject()]
        exec.entrypoint = ["/bin/x"]
        let config = ImageConfig(platform: .linuxAMD64, config: exec)
        let service = DeployRefs.Service(name: "Komodo_D.x", reference: "r/ns/k@sha256:00", config: config)
        #expect(service.ports.map(\.number) == [7770, 7771], "sorted; unparsable ports dropped")
        let document = ReleaseDocument(
            version: "1", created: "", revision: nil, recipesDigest: nil, lockDigest: nil, registry: "r",
            namespace: "ns", movingTags: [], images: [])
        let compose = DeployRefs.render(document, services: [service], format: .compose)
        let services = try #require((try Yams.load(yaml: compose) as? [String: Any])?["services"] as? [String: Any])
        #expect(
            (services["komodo-d-x"] as? [String: Any])?["volumes"] as? [String] == [
                "komodo-d-x-data:/home/komodo/.komodo"
            ])
        let kube = DeployRefs.render(document, services: [service], format: .kubernetes)
        let set = try #require(try Yams.load_all(yaml: kube).compactMap { $0 as? [String: Any] }.last)
        let pod = ((set["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any]
        #expect((pod?["containers"] as? [[String: Any]])?.first?["name"] as? String == "komodo-d-x")
        let claims = (set["spec"] as? [String: Any])?["volumeClaimTemplates"] as? [[String: Any]]
        #expect((claims?.first?["metadata"] as? [String: Any])?["name"] as? String == "komodo-d-x-data")
        #expect(DeployRefs.render(document, services: [service], format: .refs) == "r/ns/k@sha256:00\n")
    }

    @Test func layerComparisonNamesAddedRemovedAndChangedPaths() {
        let a = Digest.sha256("a")
        let b = Digest.sha256("b")
        let rebuilt = [
            LayerFile(path: "etc", kind: .directory, mode: 0o755),
            LayerFile(path: "etc/msg.txt", kind: .file, size: 4, mode: 0o644, contentDigest: a),
            LayerFile(path: "etc/new", kind: .file, size: 1, mode: 0o644, contentDigest: a),
        ]
        let published = [
            LayerFile(path: "etc", kind: .directory, mode: 0o755),
            LayerFile(path: "etc/msg.txt", kind: .file, size: 9, mode: 0o600, contentDigest: b),
            LayerFile(path: "etc/old", kind: .symlink, linkTarget: "msg.txt"),
        ]
        #expect(
            LayerReader.compare(rebuilt, published) == [
                "~ /etc/msg.txt: size 9 → 4, mode 600 → 644, content \(b.encoded.prefix(12)) → \(a.encoded.prefix(12))",
                "+ /etc/new (only in the rebuilt layer)",
                "- /etc/old (only in the published layer)",
            ])
        #expect(LayerReader.compare(rebuilt, rebuilt).isEmpty)
    }
}
