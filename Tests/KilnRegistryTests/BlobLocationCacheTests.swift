import Foundation
import KilnHTTP
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnRegistry

/// A blob another repository of the registry already holds is mounted, not uploaded, even when an earlier
/// run put it there: push and copy remember where they saw blobs ($KILN_CACHE_DIR/blob-locations.json).
@Suite(.serialized) struct BlobLocationCacheTests {
    @Test func laterPushesAndCopiesMountWhatEarlierRunsPushed() async throws {
        try await withRegistry { test in
            try await withRegistry(scratch: "kiln-blobcache") { production, tmp in
                try await mountsAcrossRuns(test: test, production: production, in: tmp)
            }
        }
    }

    func mountsAcrossRuns(test: RegistryServer, production: RegistryServer, in tmp: TemporaryDirectory)
        async throws
    {
        let store = try await FixtureStore.golden(in: tmp)
        let environment = ["KILN_CACHE_DIR": tmp.path + "/cache"]
        let p = production.address
        try KilnBinary.run(
            ["push", "golden-app", "--to", "\(p)/first", "--store", store], environment: environment)
        let uploads = production.uploadRequests
        #expect(uploads > 0)
        #expect(FileManager.default.fileExists(atPath: tmp.path + "/cache/blob-locations.json"))

        // Another process pushes the same image to another repository: every blob mounted.
        let second = try KilnBinary.run(
            ["push", "golden-app", "--to", "\(p)/second", "--store", store], environment: environment)
        #expect(production.uploadRequests == uploads)
        #expect(second.stderr.contains("mounted from first/golden-app"))

        // Promotion from the test registry: the blobs production already holds are mounted there.
        try KilnBinary.run(["push", "golden-app", "--to", "\(test.address)/t", "--store", store])
        let copy = try KilnBinary.run(
            ["copy", "\(test.address)/t/golden-app:2.0.0", "\(p)/prod/golden-app"], environment: environment)
        #expect(production.uploadRequests == uploads)
        #expect(copy.stderr.contains("mounted from"))
        let digest = try OCILayout(root: store).resolve("golden-app:2.0.0").digest.description
        #expect(try Oracles.remoteDigest("\(p)/prod/golden-app:2.0.0") == digest)

        // Without the cache (another machine), the blobs are uploaded again: the cache is what saved them.
        try KilnBinary.run(
            ["push", "golden-app", "--to", "\(p)/third", "--store", store],
            environment: ["KILN_CACHE_DIR": tmp.path + "/other-cache"])
        #expect(production.uploadRequests > uploads)
    }
}

/// A registry emptied between pushes (a throwaway CI registry at the same address) leaves the blob-location
/// cache stale: each blob costs at most one refused mount, is uploaded once, and every other repository
/// mounts it from where this run put it.
@Suite(.serialized) struct StaleBlobLocationTests {
    @Test func aStaleCacheCostsOneRefusedMountPerBlobNotAnUploadPerImage() async throws {
        try await withRegistry(scratch: "kiln-stale") { registry, tmp in try await staleCache(registry, in: tmp) }
    }

    func staleCache(_ registry: RegistryServer, in tmp: TemporaryDirectory) async throws {
        let layout = try await FixtureStore.build([FixtureStore.golden], into: tmp.path + "/images")
        let app = try layout.resolve("golden-app:2.0.0")
        // The same image in four repositories: every blob is shared by all four.
        let items = ["a", "b", "c", "d"].map {
            Pusher.Item(repository: "fleet/\($0)", descriptor: app, tags: ["2.0.0"])
        }
        let cache = BlobLocationCache(path: tmp.path + "/cache/blob-locations.json")
        // Each push is a new client, as each run of `kiln push` is: what it knows comes from the cache.
        func push() async throws -> EventLog {
            let events = EventLog()
            let transport = try HTTPTransport()
            let client = RegistryClient(
                registry: registry.address, transport: transport, options: RegistryOptions(blobLocationCache: cache))
            _ = try await Pusher(layout: layout, client: client, events: events.record).push(items)
            await transport.shutdown()
            return events
        }
        let blobs = try layout.images(for: app).flatMap { [$0.manifest.config] + $0.manifest.layers }.map(\.digest)
        _ = try await push()
        for blob in blobs { #expect(registry.uploads(of: blob.description) == 1, "\(blob) uploaded once") }

        try registry.empty()
        let second = try await push()
        for blob in blobs {
            #expect(registry.uploads(of: blob.description) == 2, "\(blob) uploaded once more, not once per image")
            #expect(second.uploads(of: blob) == 1)
            #expect(second.refusals(of: blob) <= 1, "at most one refused mount for \(blob)")
        }
        #expect(try Oracles.remoteDigest("\(registry.address)/fleet/d:2.0.0") == app.digest.description)
        // The refused places were dropped from the cache: a third push (registry intact) refuses no mount.
        let third = try await push()
        #expect(third.uploadCount == 0)
        for blob in blobs { #expect(third.refusals(of: blob) == 0) }
    }
}

/// What a client learns of blob locations reaches the cache file, and only that: no registry needed.
struct BlobLocationsTests {
    @Test func learntPlacesAreSavedAndRefusedOnesDropped() async throws {
        try await withTemporaryDirectory("kiln-locations") { tmp in try learntPlaces(in: tmp) }
    }

    func learntPlaces(in tmp: TemporaryDirectory) throws {
        let cache = BlobLocationCache(path: tmp.path + "/blob-locations.json")
        let (a, b) = (Digest.sha256(Data("a".utf8)), Digest.sha256(Data("b".utf8)))
        cache.remember([(a, "ns/old")], in: "registry.example.com")

        let known = cache.locations(for: "registry.example.com")
        #expect(known.source(for: a, other: "ns/app")?.0 == "ns/old")
        #expect(known.source(for: a, other: "ns/app")?.1 == false, "remembered, not seen by this run")
        known.record(b, in: "ns/app")
        // Known without asking the registry (a copy's source repository): not worth a line in the cache.
        known.record(a, in: "src/app", learnt: false)
        known.forget(a, in: "ns/old")
        #expect(known.source(for: a, other: "ns/app")?.0 == "src/app")
        cache.save(known, registry: "registry.example.com")

        let again = cache.locations(for: "registry.example.com")
        #expect(again.source(for: b, other: "ns/other")?.0 == "ns/app")
        #expect(
            again.source(for: a, other: "ns/other") == nil, "the refused place is gone, the unlearnt one never came")
        #expect(cache.locations(for: "other.example.com").source(for: b, other: "") == nil)
        // What was saved is not saved again.
        let (seen, stale) = known.takeLearnt()
        #expect(seen.isEmpty && stale.isEmpty)
    }

    @Test func aClientReadsTheCacheOnlyWhenItNeedsLocations() async throws {
        try await withTemporaryDirectory("kiln-locations") { tmp in try await clientReads(in: tmp) }
    }

    func clientReads(in tmp: TemporaryDirectory) async throws {
        let cache = BlobLocationCache(path: tmp.path + "/blob-locations.json")
        let digest = Digest.sha256(Data("layer".utf8))
        let transport = try HTTPTransport()
        let client = RegistryClient(
            registry: "registry.example.com", transport: transport, options: RegistryOptions(blobLocationCache: cache))
        // Written after the client started: it has not read the file yet.
        cache.remember([(digest, "ns/base")], in: "registry.example.com")
        #expect(client.blobLocations.source(for: digest, other: "ns/app")?.0 == "ns/base")
        client.blobLocations.record(digest, in: "ns/app")
        client.saveBlobLocations()
        #expect(cache.locations(for: "registry.example.com").source(for: digest, other: "ns/base")?.0 == "ns/app")
        await transport.shutdown()
    }
}
