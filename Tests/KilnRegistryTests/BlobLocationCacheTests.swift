import Foundation
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

/// A blob another repository of the registry already holds is mounted, not uploaded, even when an earlier
/// run put it there: push and copy remember where they saw blobs ($KILN_CACHE_DIR/blob-locations.json).
@Suite(.serialized) struct BlobLocationCacheTests {
    @Test func laterPushesAndCopiesMountWhatEarlierRunsPushed() throws {
        let test = try RegistryServer()
        let production = try RegistryServer()
        let tmp = try TemporaryDirectory("kiln-blobcache")
        defer {
            test.stop()
            production.stop()
            tmp.remove()
        }
        let store = tmp.path + "/images"
        let environment = ["KILN_CACHE_DIR": tmp.path + "/cache"]
        try KilnBinary.run(["build", PushPullTests.golden, "--store", store])
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
