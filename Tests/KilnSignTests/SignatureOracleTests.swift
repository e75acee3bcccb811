import Foundation
import KilnHTTP
import KilnOCI
import KilnRegistry
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnSign

/// Signatures against a real docker-registry, judged by Debian 13's skopeo with a `sigstoreSigned` policy (the
/// independent oracle): Kiln signs and skopeo verifies; skopeo signs and Kiln verifies; unsigned, wrong-key,
/// altered and replayed signatures are refused by both.
@Suite(.serialized) struct SignatureOracleTests {
    static let password = "correct horse"

    /// A store with `one:1` and `two:1` (one platform each) and `multi:1` (an index of linux/amd64 and linux/arm64), each
    /// image a small gzip layer of its own.
    static func makeStore(_ tmp: TemporaryDirectory) throws -> OCILayout {
        let layout = try OCILayout(root: tmp.path + "/store")
        func image(_ name: String, _ platform: Platform) throws -> Descriptor {
            // Each layer's files in a directory of its own under the store's temporary directory.
            let dir = tmp.path + "/layers/\(name)-\(platform.architecture)"
            try tmp.write("layers/\(name)-\(platform.architecture)/rootfs/hello", "\(name) \(platform)\n")
            try Shell.run(["tar", "-C", dir + "/rootfs", "-czf", dir + "/layer.tar.gz", "hello"])
            let layer = try Data(contentsOf: URL(fileURLWithPath: dir + "/layer.tar.gz"))
            let tar = try Shell.run(["sh", "-c", "gzip -dc '\(dir)/layer.tar.gz' | sha256sum"]).stdout
            let diffID = try Digest(sha256Hex: String(tar.prefix(64)))
            try layout.writeBlob(layer)
            let config = try CanonicalJSON.encode(
                ImageConfig(platform: platform, rootfs: .init(diffIDs: [diffID])))
            try layout.writeBlob(config)
            let manifest = try CanonicalJSON.encode(
                Manifest(
                    config: Descriptor(mediaType: MediaType.imageConfig, bytes: config),
                    layers: [Descriptor(mediaType: MediaType.layerGzip, bytes: layer)]))
            try layout.writeBlob(manifest)
            var descriptor = Descriptor(mediaType: MediaType.imageManifest, bytes: manifest)
            descriptor.platform = platform
            return descriptor
        }
        for name in ["one", "two"] {
            var single = try image(name, .linuxAMD64)
            single.platform = nil
            try layout.tag(single, as: "\(name):1")
        }
        let index = try CanonicalJSON.encode(
            ImageIndex(manifests: [
                try image("multi", .linuxAMD64), try image("multi", Platform(architecture: "arm64")),
            ]))
        try layout.writeBlob(index)
        try layout.tag(Descriptor(mediaType: MediaType.imageIndex, bytes: index), as: "multi:1")
        return layout
    }

    /// Pushes the store's images to `REGISTRY/REPOSITORY` for each name given.
    static func push(_ layout: OCILayout, _ images: [(tag: String, repository: String)], to registry: RegistryServer)
        async throws
    {
        try await withClient(registry) { client in
            _ = try await Pusher(layout: layout, client: client).push(
                try images.map { image in
                    var descriptor = try layout.resolve(image.tag)
                    descriptor.annotations = nil
                    return .init(repository: image.repository, descriptor: descriptor, tags: ["1"])
                })
        }
    }

    static func withClient<T>(_ registry: RegistryServer, _ body: (RegistryClient) async throws -> T) async throws -> T
    {
        let transport = try HTTPTransport()
        let client = RegistryClient(registry: registry.address, transport: transport, options: RegistryOptions())
        do {
            let result = try await body(client)
            await transport.shutdown()
            return result
        } catch {
            await transport.shutdown()
            throw error
        }
    }

    @discardableResult
    static func kiln(_ arguments: [String], check: Bool = true) throws -> CommandResult {
        try KilnBinary.run(arguments, environment: ["KILN_KEY_PASSWORD": password], check: check)
    }

    @Test func kilnSignsAndSkopeoVerifies() async throws {
        _ = try await SigstoreOracle.with { skopeo in
            try await withRegistry(directory: "kiln-sign") { registry, tmp in
                let layout = try Self.makeStore(tmp)
                let r = registry.address
                try await Self.push(
                    layout,
                    [
                        ("one:1", "k/one"), ("multi:1", "k/multi"), ("one:1", "k/unsigned"),
                        ("one:1", "k/wrongkey"), ("one:1", "k/altered"), ("two:1", "k/replayed"),
                    ], to: registry)
                let key = tmp.path + "/release"
                let other = tmp.path + "/other"
                try Self.kiln(["key", "generate", key])
                try Self.kiln(["key", "generate", other])
                // A second generate does not overwrite the key.
                #expect(try Self.kiln(["key", "generate", key], check: false).status == 2)

                let signed = try Self.kiln(
                    ["sign", "\(r)/k/one:1", "\(r)/k/multi:1", "\(r)/k/altered:1", "--key", key + ".key", "--json"])
                let document = try JSONSerialization.jsonObject(with: Data(signed.stdout.utf8)) as! [String: Any]
                // one, multi (index + 2 platforms), altered.
                #expect((document["signatures"] as! [[String: Any]]).count == 5)
                #expect(!signed.stdout.contains(Self.password) && !signed.stderr.contains(Self.password))
                try Self.kiln(["sign", "\(r)/k/wrongkey:1", "--key", other + ".key"])
                // Signing again adds no second signature.
                let again = try Self.kiln(["sign", "\(r)/k/one:1", "--key", key + ".key"])
                #expect(again.stdout.contains("already signed"), "\(again.stdout)")

                // The tampered cases: altered payload bytes under the same signature; a valid signature of
                // another image copied to this one's .sig tag.
                try await Self.withClient(registry) { client in
                    try await Self.alterPayload(client, repository: "k/altered", tag: "1")
                    try await Self.replay(client, from: "k/one", to: "k/replayed", tag: "1")
                }

                let policy = try SigstorePolicy(skopeo: skopeo, registry: r, publicKey: key + ".pub")
                for accepted in ["k/one:1", "k/multi:1"] {
                    let result = try policy.copy("\(r)/\(accepted)", all: accepted.contains("multi"))
                    #expect(result.succeeded, "skopeo refused \(accepted): \(result.stderr)")
                    #expect(
                        try Self.kiln(["verify", "\(r)/\(accepted)", "--key", key + ".pub", "--signatures-only"])
                            .status == 0)
                }
                for refused in ["k/unsigned:1", "k/wrongkey:1", "k/altered:1", "k/replayed:1"] {
                    let result = try policy.copy("\(r)/\(refused)")
                    #expect(
                        !result.succeeded && result.stderr.contains("ignature"),
                        "skopeo accepted \(refused), or refused it for another reason: \(result.stderr)")
                    let verdict = try Self.kiln(
                        ["verify", "\(r)/\(refused)", "--key", key + ".pub", "--signatures-only"], check: false)
                    #expect(verdict.status == 1, "kiln verify \(refused): \(verdict.stdout) \(verdict.stderr)")
                }
                // skopeo's default identity rule for a pull by tag wants the tag in every checked signature.
                let exact = try SigstorePolicy(
                    skopeo: skopeo, registry: r, publicKey: key + ".pub",
                    signedIdentity: #"{"type": "matchRepoDigestOrExact"}"#)
                for accepted in ["k/one:1", "k/multi:1"] {
                    let result = try exact.copy("\(r)/\(accepted)")
                    #expect(result.succeeded, "\(accepted): \(result.stderr)")
                }
                // The other key verifies the image it signed, for both.
                let otherPolicy = try SigstorePolicy(skopeo: skopeo, registry: r, publicKey: other + ".pub")
                #expect(try otherPolicy.copy("\(r)/k/wrongkey:1").succeeded)
                #expect(!(try otherPolicy.copy("\(r)/k/one:1").succeeded))
                let json = try Self.kiln([
                    "verify", "\(r)/k/multi:1", "--key", key + ".pub", "--signatures-only", "--json",
                ])
                let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
                #expect(report["schemaVersion"] as? Int == 1 && report["verified"] as? Bool == true)
                #expect((report["manifests"] as! [[String: Any]]).allSatisfy { $0["status"] as? String == "valid" })
            }
        }
    }

    @Test func skopeoSignsAndKilnVerifies() async throws {
        _ = try await SigstoreOracle.with { skopeo in
            try await withRegistry(directory: "kiln-sign") { registry, tmp in
                let layout = try Self.makeStore(tmp)
                let r = registry.address
                let key = tmp.path + "/kiln"
                try Self.kiln(["key", "generate", key])
                let policy = try SigstorePolicy(skopeo: skopeo, registry: r, publicKey: key + ".pub")
                // skopeo signs with Kiln's key.
                let signed = try policy.copyAndSign(
                    from: "oci:\(layout.root):one:1", to: "\(r)/s/one:1", key: key + ".key", password: Self.password
                )
                #expect(signed.succeeded, "\(signed.stderr)")
                #expect(
                    try Self.kiln(["verify", "\(r)/s/one:1", "--key", key + ".pub", "--signatures-only"]).status
                        == 0)
                #expect(try policy.copy("\(r)/s/one:1").succeeded)

                // A key skopeo generated signs with Kiln; skopeo verifies it, and so does Kiln.
                let passphrase = try tmp.write("skopeo-pass", Self.password)
                try Shell.run(
                    [
                        skopeo, "generate-sigstore-key", "--output-prefix", tmp.path + "/sk", "--passphrase-file",
                        passphrase,
                    ])
                try await Self.push(layout, [("multi:1", "s/multi")], to: registry)
                try Self.kiln(["sign", "\(r)/s/multi:1", "--key", tmp.path + "/sk.private"])
                let theirs = try SigstorePolicy(skopeo: skopeo, registry: r, publicKey: tmp.path + "/sk.pub")
                #expect(try theirs.copy("\(r)/s/multi:1", all: true).succeeded)
                #expect(
                    try Self.kiln(["verify", "\(r)/s/multi:1", "--key", tmp.path + "/sk.pub", "--signatures-only"])
                        .status == 0)
                // A wrong password is refused before anything is written.
                let wrong = try KilnBinary.run(
                    ["sign", "\(r)/s/multi:1", "--key", key + ".key"], environment: ["KILN_KEY_PASSWORD": "nope"],
                    check: false)
                #expect(wrong.status == 2 && wrong.stderr.contains("password"), "\(wrong.stderr)")
            }
        }
    }

    @Test func releaseSignsEveryImageAndAttachesProvenance() async throws {
        _ = try await SigstoreOracle.with { skopeo in
            let cosign = try SigstoreOracle.cosign()
            try await withRegistry(directory: "kiln-release-sign") { registry, tmp in
                let golden = KilnBinary.packageRoot + "/Tests/Fixtures/golden"
                let store = tmp.path + "/images"
                try KilnBinary.run(
                    ["build", golden, "--store", store, "--version", "3.0.0"],
                    environment: ["SOURCE_DATE_EPOCH": "0"])
                let key = tmp.path + "/release"
                try Self.kiln(["key", "generate", key])
                let r = registry.address
                let released = try KilnBinary.run(
                    [
                        "release", "3.0.0", "--to", "\(r)/rel", "--sign-key", key + ".key", "--store", store,
                        "--recipes", golden, "--releases", tmp.path + "/releases", "--json",
                    ], environment: ["KILN_KEY_PASSWORD": Self.password])
                let report = try JSONSerialization.jsonObject(with: Data(released.stdout.utf8)) as! [String: Any]
                #expect((report["signatures"] as? [[String: Any]])?.count == 2)
                let policy = try SigstorePolicy(skopeo: skopeo, registry: r, publicKey: key + ".pub")
                for name in ["golden-app", "golden-base"] {
                    let copied = try policy.copy("\(r)/rel/\(name):3.0.0")
                    #expect(copied.succeeded, "skopeo refused \(name): \(copied.stderr)")
                    // cosign finds the provenance attestation and checks its DSSE signature offline.
                    let attested = try Shell.run(
                        [
                            cosign, "verify-attestation", "--key", key + ".pub", "--type", "slsaprovenance1",
                            "--insecure-ignore-tlog=true", "--allow-http-registry=true",
                            "\(r)/rel/\(name):3.0.0",
                        ], environment: ["HOME": tmp.path], check: false)
                    #expect(attested.succeeded, "cosign: \(attested.stderr)")
                    let verified = try Shell.run(
                        [
                            cosign, "verify", "--key", key + ".pub", "--insecure-ignore-tlog=true",
                            "--allow-http-registry=true", "\(r)/rel/\(name):3.0.0",
                        ], environment: ["HOME": tmp.path], check: false)
                    #expect(verified.succeeded, "cosign: \(verified.stderr)")
                    // Kiln checks the signatures and each platform manifest's provenance attestation.
                    let checked = try Self.kiln(["verify", "\(r)/rel/\(name):3.0.0", "--key", key + ".pub"])
                    #expect(checked.stdout.contains("provenance: valid"), "\(checked.stdout)")
                }
                // deploy-refs --key writes the node's policy: the release passes, an unsigned image in the
                // release's namespace does not.
                let node = tmp.path + "/node"
                try KilnBinary.run([
                    "deploy-refs", "3.0.0", "--releases", tmp.path + "/releases", "--store", store, "-o",
                    node + "/refs.txt", "--key", key + ".pub",
                ])
                // For Kubernetes, a policy-controller ClusterImagePolicy beside the node's file.
                try KilnBinary.run([
                    "deploy-refs", "3.0.0", "--releases", tmp.path + "/releases", "--store", store, "--format",
                    "kubernetes", "-o", tmp.path + "/cluster/node.yaml", "--key", key + ".pub",
                ])
                try ClusterImagePolicyTests.expectPolicy(
                    at: tmp.path + "/cluster/cluster-image-policy.yaml", scope: "\(r)/rel",
                    publicKeyPEMs: [try PublicKey.load(path: key + ".pub").pem])
                try KilnBinary.run(["push", "golden-app:3.0.0", "--to", "\(r)/rel/unsigned", "--store", store])
                func nodePulls(_ reference: String) throws -> CommandResult {
                    try Shell.run(
                        [
                            skopeo, "--policy", node + "/policy.json", "--registries.d", node + "/registries.d",
                            "copy", "--remove-signatures", "--src-tls-verify=false", "docker://\(reference)",
                            "oci:\(tmp.path)/pulled-\(UUID().uuidString.lowercased()):x",
                        ], check: false)
                }
                for name in ["golden-app", "golden-base"] {
                    let pulled = try nodePulls("\(r)/rel/\(name):3.0.0")
                    #expect(pulled.succeeded, "\(name): \(pulled.stderr)")
                }
                let refused = try nodePulls("\(r)/rel/unsigned/golden-app:3.0.0")
                #expect(!refused.succeeded && refused.stderr.contains("ignature"), "\(refused.stderr)")

                // Promotion: every signature checked at the source, then copied with its attachments and
                // recorded at the destination, where rollback works and the remapped policy accepts it.
                let promoted = try KilnBinary.run([
                    "promote", "3.0.0", "--from", "\(r)/rel", "--to", "\(r)/prod", "--key", key + ".pub",
                ])
                #expect(promoted.stdout.contains("\(r)/prod/golden-app@"), "\(promoted.stdout)")
                let production = try SigstorePolicy(
                    skopeo: skopeo, registry: r, publicKey: key + ".pub",
                    signedIdentity: """
                        {"type": "remapIdentity", "prefix": "\(r)/prod", "signedPrefix": "\(r)/rel"}
                        """)
                #expect(try production.copy("\(r)/prod/golden-app:3.0.0").succeeded)
                try KilnBinary.run([
                    "rollback", "3.0.0", "--to", "\(r)/prod", "--dry-run", "--releases", tmp.path + "/none",
                ])
                // An unsigned release is not promoted: exit 1, nothing copied (built on another date: the version
                // alone is no input to a digest, and the same digests would carry 3.0.0's signatures).
                try KilnBinary.run(
                    ["build", golden, "--store", store, "--version", "4.0.0"],
                    environment: ["SOURCE_DATE_EPOCH": "1"])
                try KilnBinary.run([
                    "release", "4.0.0", "--to", "\(r)/rel", "--store", store, "--recipes", golden, "--releases",
                    tmp.path + "/releases",
                ])
                let refusedPromotion = try KilnBinary.run(
                    ["promote", "4.0.0", "--from", "\(r)/rel", "--to", "\(r)/prod", "--key", key + ".pub"],
                    check: false)
                #expect(refusedPromotion.status == 1, "\(refusedPromotion.stdout)\(refusedPromotion.stderr)")
                let tags = try Shell.run([
                    "skopeo", "list-tags", "--tls-verify=false", "docker://\(r)/prod/golden-app",
                ])
                #expect(!tags.stdout.contains("4.0.0"))
            }
        }
    }

    @Test func copyCarriesSignaturesToAnotherRegistry() async throws {
        _ = try await SigstoreOracle.with { skopeo in
            try await withRegistry { test in
                try await withRegistry(directory: "kiln-promote") { production, tmp in
                    let layout = try Self.makeStore(tmp)
                    try await Self.push(layout, [("multi:1", "t/multi")], to: test)
                    let key = tmp.path + "/release"
                    try Self.kiln(["key", "generate", key])
                    try Self.kiln(["sign", "\(test.address)/t/multi:1", "--key", key + ".key"])
                    let copied = try Self.kiln([
                        "copy", "\(test.address)/t/multi:1", "\(production.address)/p/multi", "--json",
                    ])
                    let report = try JSONSerialization.jsonObject(with: Data(copied.stdout.utf8)) as! [String: Any]
                    // The index's and both platforms' signatures.
                    #expect((report["attachments"] as? [String])?.count == 3, "\(copied.stdout)")
                    let promoted = "\(production.address)/p/multi:1"
                    #expect(
                        try Self.kiln(["verify", promoted, "--key", key + ".pub", "--signatures-only"]).status == 0)
                    // The signatures name the test repository: production's policy maps it.
                    let policy = try SigstorePolicy(
                        skopeo: skopeo, registry: production.address, publicKey: key + ".pub",
                        signedIdentity: """
                            {"type": "remapIdentity", "prefix": "\(production.address)/p", \
                            "signedPrefix": "\(test.address)/t"}
                            """)
                    let accepted = try policy.copy(promoted)
                    #expect(accepted.succeeded, "\(accepted.stderr)")
                    // Copying again changes nothing.
                    let again = try Self.kiln([
                        "copy", "\(test.address)/t/multi:1", "\(production.address)/p/multi", "--json",
                    ])
                    #expect(!again.stdout.contains("attachments"), "\(again.stdout)")
                }
            }
        }
    }

    /// Replaces the top manifest's signature payload with altered bytes, keeping the signature annotation.
    static func alterPayload(_ client: RegistryClient, repository: String, tag: String) async throws {
        let attachments = Attachments(client: client)
        let (_, top) = try await client.manifest(repository, tag)
        var manifest = try #require(try await attachments.manifest(repository, top.digest, .signature))
        let original = try await attachments.blob(repository, manifest.layers[0])
        let altered = Data(
            String(decoding: original, as: UTF8.self).replacingOccurrences(of: "kiln ", with: "KILN ").utf8)
        #expect(altered != original)
        let digest = try await attachments.put(repository, altered)
        manifest.layers[0].digest = digest
        manifest.layers[0].size = Int64(altered.count)
        try await client.putManifest(
            repository, CosignLayout.tag(top.digest, .signature), data: try CanonicalJSON.encode(manifest),
            mediaType: MediaType.imageManifest)
    }

    /// Copies `from`'s signature manifest (valid, for another digest) to `to`'s .sig tag.
    static func replay(_ client: RegistryClient, from: String, to: String, tag: String) async throws {
        let attachments = Attachments(client: client)
        let (_, source) = try await client.manifest(from, tag)
        let (_, target) = try await client.manifest(to, tag)
        let manifest = try #require(try await attachments.manifest(from, source.digest, .signature))
        for blob in manifest.layers + [manifest.config] {
            _ = try await attachments.put(to, try await attachments.blob(from, blob))
        }
        try await client.putManifest(
            to, CosignLayout.tag(target.digest, .signature), data: try CanonicalJSON.encode(manifest),
            mediaType: MediaType.imageManifest)
    }
}
