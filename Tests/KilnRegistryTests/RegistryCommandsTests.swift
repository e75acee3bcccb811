import Foundation
import KilnHTTP
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnRegistry

/// `kiln push`'s selection rule and the registry commands (ls, digest, manifest, copy, tag, untag) against real
/// docker-registry processes, checked with skopeo and the registries' own logs.
@Suite(.serialized) struct RegistryCommandsTests {
    func json(_ result: CommandResult) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
    }

    func remoteTags(_ repository: String) throws -> [String] {
        let out = try Shell.run(["skopeo", "list-tags", "--tls-verify=false", "docker://\(repository)"]).stdout
        return ((try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])?["Tags"] as? [String] ?? [])
            .sorted()
    }

    /// The golden images built twice: as 2.0.0 (the recipe's version) and as 1.10.0 (which moves `stable`).
    /// Each build gets its own SOURCE_DATE_EPOCH so the versions differ in content: the version alone is no
    /// input to a digest.
    func twoVersions(_ tmp: TemporaryDirectory) async throws -> String {
        let store = tmp.path + "/images"
        try await FixtureStore.build([FixtureStore.golden], into: store, sourceDateEpoch: 0)
        try await FixtureStore.build([FixtureStore.golden], into: store, version: "1.10.0", sourceDateEpoch: 1)
        return store
    }

    @Test func pushSendsTheNamedTagTheCurrentVersionOrAllTags() async throws {
        try await withRegistry(scratch: "kiln-pushsel") { registry, tmp in
            let store = try await twoVersions(tmp)
            // A third build, as 1.9.0 (which takes `stable`): as text 1.9.0 sorts after 1.10.0, as a version before.
            try await FixtureStore.build([FixtureStore.golden], into: store, version: "1.9.0", sourceDateEpoch: 2)
            let layout = try OCILayout(root: store)
            let r = registry.address
            // NAME:TAG: that tag only.
            try KilnBinary.run(["push", "golden-app:1.10.0", "--to", "\(r)/a", "--store", store])
            #expect(try remoteTags("\(r)/a/golden-app") == ["1.10.0"])
            // NAME: the highest version (2.0.0; 1.9.0 is the newest build) with the tags naming that image.
            try KilnBinary.run(["push", "golden-app", "--to", "\(r)/b", "--store", store])
            #expect(try remoteTags("\(r)/b/golden-app") == ["2.0.0"])
            // Nothing named: every image's current version; `stable` names the 1.9.0 build, so it is not sent.
            try KilnBinary.run(["push", "--to", "\(r)/c", "--store", store])
            #expect(try remoteTags("\(r)/c/golden-app") == ["2.0.0"])
            #expect(try remoteTags("\(r)/c/golden-base") == ["1.10.0"])
            // --all-tags: the rest.
            try KilnBinary.run(["push", "golden-app", "--all-tags", "--to", "\(r)/c", "--store", store])
            #expect(try remoteTags("\(r)/c/golden-app") == ["1.10.0", "1.9.0", "2.0.0", "stable"])

            // A pulled image is never pushed: not with everything, and naming it is refused.
            try KilnBinary.run(["pull", "\(r)/c/golden-app:stable", "--store", store])
            #expect(try layout.tags().contains { $0.reference == "\(r)/c/golden-app:stable" })
            let all = try KilnBinary.run(["push", "--all-tags", "--to", "\(r)/d", "--store", store, "--json"])
            let pushed = try json(all)["images"] as? [[String: Any]] ?? []
            #expect(Set(pushed.compactMap { $0["repository"] as? String }) == ["d/golden-app", "d/golden-base"])
            let named = try KilnBinary.run(
                ["push", "\(r)/c/golden-app:stable", "--to", "\(r)/d", "--store", store], check: false)
            #expect(named.status == 64)
            #expect(named.stderr.contains("pulled from a registry") && named.stderr.contains("kiln copy"))

            // An upper-case name is refused before any request reaches the registry.
            try layout.tag(try layout.resolve("golden-base:1.0.0"), as: "Upper:1")
            let requestsBefore = registry.log.split(separator: "\n").count
            let upper = try KilnBinary.run(["push", "Upper:1", "--to", "\(r)/e", "--store", store], check: false)
            #expect(upper.status == 64)
            #expect(upper.stderr.contains("'e/Upper' is not a valid repository name"))
            #expect(registry.log.split(separator: "\n").count == requestsBefore)
            #expect(!registry.log.contains("/v2/e/"))
        }
    }

    @Test func lsDigestManifestCopyTagAndUntag() async throws {
        try await withRegistry(scratch: "kiln-regcmd") { registry, tmp in
            try await withRegistry { production in
                let store = try await twoVersions(tmp)
                let r = registry.address
                try KilnBinary.run(["push", "golden-app", "--all-tags", "--to", "\(r)/test", "--store", store])

                // ls: the tags, sorted, as skopeo lists them.
                let ls = try KilnBinary.run(["ls", "\(r)/test/golden-app"]).stdout
                #expect(ls == "1.10.0\n2.0.0\nstable\n")
                let lsJSON = try json(try KilnBinary.run(["ls", "\(r)/test/golden-app", "--json"]))
                #expect(lsJSON["schemaVersion"] as? Int == 1)
                #expect(lsJSON["registry"] as? String == r && lsJSON["repository"] as? String == "test/golden-app")
                #expect(lsJSON["tags"] as? [String] == ["1.10.0", "2.0.0", "stable"])

                // digest: the sha256 of the bytes skopeo reads; manifest: those bytes.
                let layout = try OCILayout(root: store)
                let stable = try layout.resolve("golden-app:stable").digest.description
                #expect(try KilnBinary.run(["digest", "\(r)/test/golden-app:stable"]).stdout == stable + "\n")
                let raw = try Shell.run([
                    "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://\(r)/test/golden-app:stable",
                ])
                #expect(try KilnBinary.run(["manifest", "\(r)/test/golden-app:stable"]).stdout == raw.stdout)
                let manifest = try json(try KilnBinary.run(["manifest", "\(r)/test/golden-app:stable", "--json"]))
                #expect(manifest["digest"] as? String == stable)
                #expect((manifest["manifest"] as? [String: Any])?["mediaType"] as? String == MediaType.imageManifest)
                let missing = try KilnBinary.run(["digest", "\(r)/test/golden-app:nope"], check: false)
                #expect(missing.status != 0)
                #expect(missing.stderr.contains("\(r)"))

                // copy within the registry: every blob mounted, none uploaded; same digest.
                let uploads = registry.uploadRequests
                let copy = try json(
                    try KilnBinary.run(["copy", "\(r)/test/golden-app:stable", "\(r)/prod/golden-app", "--json"]))
                #expect(copy["digest"] as? String == stable)
                #expect(registry.uploadRequests == uploads, "a copy within one registry mounts")
                #expect(registry.log.contains("mount=sha256"))
                #expect(try remoteTags("\(r)/prod/golden-app") == ["stable"])
                // copy by digest to another registry, under a new tag: the same digest there.
                try KilnBinary.run([
                    "copy", "\(r)/test/golden-app@\(stable)", "\(production.address)/komodo/app:1.10.0",
                ])
                #expect(try Oracles.remoteDigest("\(production.address)/komodo/app:1.10.0") == stable)
                let wrong = try KilnBinary.run(
                    ["copy", "\(r)/test/golden-app:2.0.0", "\(production.address)/komodo/app@\(stable)"], check: false)
                #expect(wrong.status != 0)

                // tag: a new name for the same manifest, remotely.
                try KilnBinary.run(["tag", "\(production.address)/komodo/app:1.10.0", "stable"])
                #expect(try Oracles.remoteDigest("\(production.address)/komodo/app:stable") == stable)
                #expect(try KilnBinary.run(["tag", "\(r)/test/golden-app:stable", "-bad"], check: false).status == 64)

                // untag locally, then gc frees what only that tag kept.
                let only = try layout.resolve("golden-app:2.0.0").digest
                let unknown = try KilnBinary.run(["untag", "golden-app:9", "--store", store], check: false)
                #expect(unknown.status == 2, "an unknown image: README's exit-code table says 2")
                try KilnBinary.run(["untag", "golden-app:2.0.0", "--store", store])
                #expect(try !layout.tags().contains { $0.reference == "golden-app:2.0.0" })
                #expect(layout.hasBlob(only))
                try KilnBinary.run(["gc", "--grace", "0", "--store", store])
                #expect(!layout.hasBlob(only))
                #expect(layout.hasBlob(try layout.resolve("golden-app:stable").digest))
            }
        }
    }

    @Test func tagListsAreCompleteAndTagAddsNames() async throws {
        try await withRegistry(scratch: "kiln-tagpages") { registry, tmp in
            let store = try await FixtureStore.golden(in: tmp)
            try KilnBinary.run(["push", "golden-base", "--to", "\(registry.address)/p", "--store", store])
            let names = ["a", "b", "c", "d"]
            for name in names { try KilnBinary.run(["tag", "\(registry.address)/p/golden-base:1.0.0", name]) }
            let transport = try HTTPTransport()
            let client = RegistryClient(registry: registry.address, transport: transport, options: RegistryOptions())
            let tags = try await client.tags("p/golden-base", pageSize: 2)
            await transport.shutdown()
            #expect(tags.sorted() == ["1.0.0"] + names)
            // docker-registry 2.8 ignores `n` and answers in one page; the Link header other registries send
            // (distribution 3, Harbor) is read like this:
            #expect(
                RegistryClient.nextPage("</v2/p/golden-base/tags/list?last=b&n=2>; rel=\"next\"")
                    == "/v2/p/golden-base/tags/list?last=b&n=2")
            #expect(RegistryClient.nextPage(nil) == nil)
        }
    }
}
