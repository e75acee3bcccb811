import Foundation
import KilnOCI
import KilnTestSupport
import Testing

@testable import KilnStore

/// The store's integrity readers: reads that verify what they stream, and fsck.
@Suite struct OCILayoutFsckTests {
    /// A one-layer image whose layer blob is then flipped: reads that stream it refuse it, fsck names it and
    /// the tag.
    static func tamperedStore(_ root: String) throws -> (OCILayout, Digest) {
        let layout = try OCILayout(root: root)
        let layer = try layout.writeBlob(Data(repeating: 7, count: 100_000))
        let config = try layout.writeBlob(try CanonicalJSON.encode(ImageConfig(platform: .linuxAMD64)))
        let manifest = Manifest(
            config: Descriptor(mediaType: MediaType.imageConfig, digest: config, size: 10),
            layers: [Descriptor(mediaType: MediaType.layerTar, digest: layer, size: 100_000)])
        let bytes = try CanonicalJSON.encode(manifest)
        try layout.writeBlob(bytes)
        try layout.tag(Descriptor(mediaType: MediaType.imageManifest, bytes: bytes), as: "app:1")
        let handle = try #require(FileHandle(forUpdatingAtPath: layout.blobPath(layer)))
        try handle.seek(toOffset: 50_000)
        try handle.write(contentsOf: Data([8]))
        try handle.close()
        return (layout, layer)
    }

    @Test func verifyingReadsAndFsckFindATamperedBlob() async throws {
        try await withTemporaryDirectory("kiln-durable") { tmp in
            let (layout, layer) = try Self.tamperedStore(tmp.path + "/store")
            #expect(throws: StoreError.self) { try VerifyingReader.verify(layout.blobPath(layer), expected: layer) }
            let report = try layout.fsck()
            #expect(report.blobsChecked == 3)
            #expect(report.problems.count == 1)
            #expect(report.problems.first?.digest == layer)
            #expect(report.problems.first?.tags == ["app:1"])
            #expect(report.problems.first?.problem.hasPrefix("corrupt: its content hashes to sha256:") == true)

            let result = try KilnBinary.run(["fsck", "--store", layout.root], check: false)
            #expect(result.status == 1)
            #expect(
                result.stdout.contains("\(layer)") && result.stdout.contains("reached by app:1"), "\(result.stdout)")
            try FileManager.default.removeItem(atPath: layout.blobPath(layer))
            let missing = try KilnBinary.run(["fsck", "--store", layout.root, "--json"], check: false)
            #expect(missing.status == 1 && missing.stdout.contains("\"missing\""), "\(missing.stdout)")
        }
    }

    /// Manifests whose bytes match their names but that are not manifests: a layer digest `sha256:../../x`, JSON
    /// that does not decode as a manifest, text that is not JSON. Each is named as malformed with a located,
    /// readable reason, and fsck exits 1 (it exited 0, and showed Foundation's DecodingError text).
    @Test func fsckReportsMalformedManifests() async throws {
        try await withTemporaryDirectory("kiln-durable") { tmp in
            let layout = try OCILayout(root: tmp.path + "/store")
            let config = try layout.writeBlob(try CanonicalJSON.encode(ImageConfig(platform: .linuxAMD64)))
            let configSize = try #require(layout.blobSize(config))
            let traversal = Data(
                (#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":""#
                    + config.description
                    + #"","size":\#(configSize)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:../../x","size":1}]}"#)
                    .utf8)
            let wrongType = Data(#"{"schemaVersion":2,"config":"not a descriptor","layers":[]}"#.utf8)
            let notJSON = Data("not json at all".utf8)
            var digests: [String: Digest] = [:]
            for (name, bytes) in [("traversal", traversal), ("wrong-type", wrongType), ("not-json", notJSON)] {
                let digest = try layout.writeBlob(bytes)
                try layout.tag(Descriptor(mediaType: MediaType.imageManifest, bytes: bytes), as: "\(name):1")
                digests[name] = digest
            }
            let report = try layout.fsck()
            #expect(!report.isClean)
            for (name, digest) in digests {
                let problem = report.problems.first { $0.digest == digest }
                #expect(
                    problem?.problem.hasPrefix("malformed: not a valid \(MediaType.imageManifest)") == true,
                    "\(name): \(String(describing: problem))")
                #expect(problem?.tags == ["\(name):1"], "\(name)")
                #expect(problem?.problem.contains("DecodingError") == false, "\(name): \(String(describing: problem))")
                #expect(problem?.problem.contains("CodingKeys") == false, "\(name): \(String(describing: problem))")
            }
            let traversalProblem = report.problems.first { $0.digest == digests["traversal"] }?.problem ?? ""
            #expect(traversalProblem.contains("layers[0].digest"), "\(traversalProblem)")
            #expect(traversalProblem.contains("sha256:../../x"), "\(traversalProblem)")

            for json in [false, true] {
                let result = try KilnBinary.run(
                    ["fsck", "--store", layout.root] + (json ? ["--json"] : []), check: false)
                #expect(result.status == 1, "json=\(json): \(result.status) \(result.stdout) \(result.stderr)")
                #expect(result.stdout.contains("malformed"), "\(result.stdout)")
                #expect(!(result.stdout + result.stderr).contains("DecodingError"), "\(result.stdout)\(result.stderr)")
                if !json {
                    #expect(result.stdout.contains("reached by traversal:1"), "\(result.stdout)")
                }
            }
        }
    }

    @Test func fsckOfASoundStoreExitsZero() async throws {
        try await withTemporaryDirectory("kiln-durable") { tmp in
            let layout = try OCILayout(root: tmp.path + "/store")
            try layout.writeBlob(Data("x".utf8))
            let result = try KilnBinary.run(["fsck", "--store", layout.root])
            #expect(result.status == 0 && result.stdout.contains("1 blobs checked, all match"))
        }
    }
}
