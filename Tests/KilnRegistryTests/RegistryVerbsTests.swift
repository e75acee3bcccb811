import Foundation
import KilnTestSupport
import Testing

/// The registry verbs beside ls, digest, manifest, copy and tag, against a real docker-registry: the catalog,
/// remote inspect (with --platform), one blob, and delete (refused cleanly where the registry forbids it).
@Suite struct RegistryVerbsTests {
    func json(_ result: CommandResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    @Test func catalogInspectBlobAndDelete() async throws {
        try await withRegistry(scratch: "kiln-verbs") { registry, tmp in
            try tmp.write(
                "r/multi.yaml",
                """
                name: multi
                version: "1"
                tags: [latest]
                platforms: [linux/amd64, linux/arm64]
                layers:
                  - name: files
                    files:
                      - {path: /etc/multi, content: "x\\n"}
                entrypoint: [/bin/true]
                """)
            let store = tmp.path + "/images"
            try await FixtureStore.build([tmp.path + "/r"], into: store)
            try KilnBinary.run(["push", "multi", "--to", "\(registry.address)/ns", "--store", store])
            let multi = "\(registry.address)/ns/multi"

            // catalog: every repository, sorted.
            let catalog = try json(try KilnBinary.run(["catalog", registry.address, "--json"]))
            #expect(catalog["repositories"] as? [String] == ["ns/multi"])
            #expect(try KilnBinary.run(["catalog", registry.address]).stdout == "ns/multi\n")

            // inspect of a remote index: both platforms, the same manifests and configs as the store's.
            let local = try json(try KilnBinary.run(["inspect", "multi:1", "--json", "--store", store]))
            let remote = try json(try KilnBinary.run(["inspect", multi + ":1", "--json"]))
            #expect(remote["digest"] as? String == local["digest"] as? String)
            let localImages = try #require(local["images"] as? [[String: Any]])
            let remoteImages = try #require(remote["images"] as? [[String: Any]])
            #expect(
                remoteImages.map { $0["manifestDigest"] as? String }
                    == localImages.map { $0["manifestDigest"] as? String })
            #expect(remoteImages.map { $0["platform"] as? String } == ["linux/amd64", "linux/arm64"])
            let arm = try json(try KilnBinary.run(["inspect", multi + ":1", "--platform", "linux/arm64", "--json"]))
            let armImages = try #require(arm["images"] as? [[String: Any]])
            #expect(armImages.count == 1 && armImages[0]["platform"] as? String == "linux/arm64")
            let text = try KilnBinary.run(["inspect", multi + ":1"]).stdout
            #expect(text.contains("platform    linux/arm64") && text.contains("entrypoint  [\"/bin/true\"]"), "\(text)")
            let missingPlatform = try KilnBinary.run(
                ["inspect", multi + ":1", "--platform", "linux/s390x"], check: false)
            #expect(missingPlatform.status == 2 && missingPlatform.stderr.contains("has no linux/s390x image"))

            // blob: a layer, verified, to a file and to stdout.
            let layer = try #require(((armImages[0]["layers"] as? [[String: Any]])?.first?["digest"]) as? String)
            try KilnBinary.run(["blob", "\(multi)@\(layer)", "-o", tmp.path + "/layer.tar.gz"])
            let hash = try Shell.run(["sha256sum", tmp.path + "/layer.tar.gz"]).stdout.prefix(64)
            #expect("sha256:" + hash == layer)
            let piped = try Shell.run([
                "sh", "-c", "\"$0\" blob \"$1\" | sha256sum", KilnBinary.path, "\(multi)@\(layer)",
            ])
            #expect(piped.stdout.hasPrefix(String(hash)))
            let unknownBlob = try KilnBinary.run(
                ["blob", "\(multi)@sha256:\(String(repeating: "0", count: 64))"], check: false)
            #expect(unknownBlob.status == 2)

            // delete: the manifest goes, with every tag on it; an unknown tag is 2.
            let deleted = try json(try KilnBinary.run(["delete", multi + ":1", "--json"]))
            #expect(deleted["digest"] as? String == local["digest"] as? String)
            let tags = try KilnBinary.run(["ls", multi]).stdout
            #expect(
                !tags.split(separator: "\n").contains("1") && !tags.split(separator: "\n").contains("latest"), "\(tags)"
            )
            let again = try KilnBinary.run(["delete", multi + ":1"], check: false)
            #expect(again.status == 2 && again.stderr.contains("no manifest 1"), "\(again.stderr)")
        }
    }

    /// A registry configured without deletes refuses, the error says so, and the image stays.
    @Test func deleteIsRefusedCleanlyWhereTheRegistryForbidsIt() async throws {
        try await withRegistry(deletes: false, scratch: "kiln-nodelete") { registry, tmp in
            let store = try await FixtureStore.golden(in: tmp)
            try KilnBinary.run(["push", "golden-base", "--to", "\(registry.address)/ns", "--store", store])
            let reference = "\(registry.address)/ns/golden-base:1.0.0"
            let refused = try KilnBinary.run(["delete", reference, "--json"], check: false)
            #expect(refused.status == 2, "\(refused.stderr)")
            #expect(refused.stderr.contains("does not allow deleting"), "\(refused.stderr)")
            #expect(try json(refused)["exitCode"] as? Int == 2)
            #expect(try KilnBinary.run(["digest", reference]).succeeded)
        }
    }
}
