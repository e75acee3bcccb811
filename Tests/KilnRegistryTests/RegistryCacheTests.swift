import Foundation
import KilnHTTP
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnRegistry

/// The registry as a shared build cache: entries as OCI artifacts tagged `kiln-<kind>-<key>`, against a real
/// docker-registry with Basic auth.
@Suite(.serialized) struct RegistryCacheTests {
    @Test func entriesRoundTripConcurrentWritersAgreeAndForeignTagsAreRefused() async throws {
        let registry = try RegistryServer(auth: .basic(user: "ci", password: "cache-pw"))
        let tmp = try TemporaryDirectory("kiln-regcache")
        defer {
            registry.stop()
            tmp.remove()
        }
        let transport = try HTTPTransport()
        defer { Task { await transport.shutdown() } }
        let credentials = CredentialStore(environment: [
            "KILN_REGISTRY_USERNAME": "ci", "KILN_REGISTRY_PASSWORD": "cache-pw", "HOME": tmp.path,
        ])
        let client = RegistryClient(
            registry: registry.address, transport: transport, options: RegistryOptions(credentials: credentials))
        let cache = RegistryCache(repository: RegistryRepository(client: client, repository: "ci/cache"))

        let blob = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let path = tmp.path + "/layer.bin"
        try blob.write(to: URL(fileURLWithPath: path))
        let descriptor = Descriptor(mediaType: MediaType.layerGzip, bytes: blob)
        let record = Data(#"{"layer":"\#(descriptor.digest)"}"#.utf8)
        let key = Digest.sha256(Data("a layer key".utf8)).encoded

        #expect(try await cache.get(.layer, key: key).isMiss)
        // Two writers of the same key at once: both succeed, and the tag names their (equal) content.
        async let first = cache.put(.layer, key: key, record: record, blobs: [(descriptor, path)])
        async let second = cache.put(.layer, key: key, record: record, blobs: [(descriptor, path)])
        let (a, b) = try await (first, second)
        #expect(a == b)
        guard case .hit(let entry) = try await cache.get(.layer, key: key) else {
            Issue.record("the entry is not found")
            return
        }
        #expect(entry.record == record)
        #expect(entry.blobs == [descriptor])
        #expect(entry.digest == a.digest)
        try await cache.download(entry.blobs[0], to: tmp.path + "/back.bin")
        #expect(FileManager.default.contents(atPath: tmp.path + "/back.bin") == blob)
        // Another kind with the same key is another entry.
        #expect(try await cache.get(.build, key: key).isMiss)

        // The entry's manifest put under another key's tag (a poisoned cache) is refused, not used.
        let other = Digest.sha256(Data("another key".utf8)).encoded
        let (data, served) = try await client.manifest("ci/cache", RegistryCache.tag(.layer, key: key))
        try await client.putManifest(
            "ci/cache", RegistryCache.tag(.layer, key: other), data: data, mediaType: served.mediaType)
        guard case .refused(let why) = try await cache.get(.layer, key: other) else {
            Issue.record("an entry recorded for another key was accepted")
            return
        }
        #expect(why.contains("another key"))
        // So is an artifact that is not Kiln's under a cache tag.
        let foreign = try CanonicalJSON.encode(
            Manifest(config: Descriptor(mediaType: MediaType.empty, bytes: Data("{}".utf8)), layers: []))
        let third = Digest.sha256(Data("a third key".utf8)).encoded
        try await client.putManifest(
            "ci/cache", RegistryCache.tag(.build, key: third), data: foreign, mediaType: MediaType.imageManifest)
        guard case .refused = try await cache.get(.build, key: third) else {
            Issue.record("a foreign artifact was accepted")
            return
        }
        // One tag per key.
        let tags = try await client.tags("ci/cache")
        #expect(
            tags.filter { $0.hasPrefix("kiln-layer-") }.sorted()
                == ["kiln-layer-\(key)", "kiln-layer-\(other)"].sorted())
    }
}

extension RegistryCache.Lookup {
    var isMiss: Bool {
        if case .miss = self { return true }
        return false
    }
}

/// `kiln build --cache-to/--cache-from`: a second store builds the golden images from the registry cache with
/// no layer written and the same digests; a poisoned entry is refused with a warning and built locally.
@Suite(.serialized) struct RegistryBuildCacheTests {
    @Test func aSecondStoreBuildsFromTheRegistryCacheAndRefusesAPoisonedEntry() async throws {
        let registry = try RegistryServer(auth: .basic(user: "ci", password: "cache-pw"))
        let tmp = try TemporaryDirectory("kiln-buildcache")
        defer {
            registry.stop()
            tmp.remove()
        }
        let environment = [
            "KILN_REGISTRY_USERNAME": "ci", "KILN_REGISTRY_PASSWORD": "cache-pw", "HOME": tmp.path,
            "SOURCE_DATE_EPOCH": "",
        ]
        let repository = "\(registry.address)/ci/cache"
        func build(_ name: String, _ extra: [String]) throws -> CommandResult {
            try KilnBinary.run(
                [
                    "build", PushPullTests.golden, "--store", tmp.path + "/" + name, "--cache-dir",
                    tmp.path + "/dl-" + name,
                ]
                    + extra, environment: environment)
        }
        _ = try build("first", ["--cache-to", repository])
        let expected = try KilnBinary.imageDigests(tmp.path + "/first")

        let transport = try HTTPTransport()
        defer { Task { await transport.shutdown() } }
        let client = RegistryClient(
            registry: registry.address, transport: transport,
            options: RegistryOptions(credentials: CredentialStore(environment: environment)))
        let keys = try await client.tags("ci/cache").filter { $0.hasPrefix("kiln-layer-") }
        #expect(keys.count >= 2, "every layer published under its key")

        // Another machine: an empty store and download cache, the registry cache only.
        let second = try build("second", ["--cache-from", repository])
        #expect(try KilnBinary.imageDigests(tmp.path + "/second") == expected)
        #expect(second.stdout.contains("(0 layers written"), "\(second.stdout)")
        #expect(second.stderr.contains("from the cache"))

        // Poison one layer: each of its entries (under its plan key and its content key alike, or the build takes
        // the other) still records that layer, but lists another layer's blob.
        let cache = RegistryCache(repository: RegistryRepository(client: client, repository: "ci/cache"))
        var entries: [(key: String, entry: RegistryCache.Entry)] = []
        for tag in keys {
            let key = String(tag.dropFirst("kiln-layer-".count))
            if case .hit(let entry) = try await cache.get(.layer, key: key) { entries.append((key, entry)) }
        }
        try #require(entries.count == keys.count, "the published entries are not found")
        let victim = entries[0].entry.record
        let blob = try #require(entries.first { $0.entry.record != victim }?.entry.blobs[0])
        for (key, entry) in entries where entry.record == victim {
            try await cache.put(
                .layer, key: key, record: entry.record,
                blobs: [(blob, tmp.path + "/first/blobs/sha256/" + blob.digest.encoded)])
        }
        let third = try build("third", ["--cache-from", repository])
        #expect(third.stderr.contains("refused"), "\(third.stderr)")
        #expect(third.stdout.contains("(1 layers written"), "\(third.stdout)")
        #expect(try KilnBinary.imageDigests(tmp.path + "/third") == expected)

        // --offline promises no connection: with a registry cache it is refused before anything happens.
        let offline = try KilnBinary.run(
            ["build", PushPullTests.golden, "--store", tmp.path + "/fourth", "--offline", "--cache-from", repository],
            environment: environment, check: false)
        #expect(offline.status == 64)
        #expect(offline.stderr.contains("--offline"))
        #expect(!FileManager.default.fileExists(atPath: tmp.path + "/fourth"))
    }
}
