import Foundation
import KilnTestSupport
import Testing

@testable import KilnDebian

/// The SBOM names what was compiled into an image: a build step's git source by its commit (and tree), an archive
/// source by its sha256, beside the Debian packages; and SPDX's own `pyspdxtools -i` accepts the document.
@Suite struct SBOMTests {
    struct Document: Decodable {
        struct Entry: Decodable {
            var SPDXID: String
            var name: String
            var versionInfo: String?
            var downloadLocation: String
            var sourceInfo: String
            var checksums: [[String: String]]?
        }
        var packages: [Entry]
    }

    @Test func buildSourcesAreListedWithTheirCommitOrDigest() async throws {
        let commit = "2f846c0aa790516c49299914488623ecb31b1d2b"
        let tree = "e8aa547cd2a9c0b418d1082bbabbe4f75aad79a2"
        let archiveSHA = String(repeating: "ab", count: 32)
        let bytes = try SBOM.document(
            image: "iguana",
            packages: [
                SBOM.Package(
                    name: "libsodium23", version: "1.0.18-1", architecture: "amd64",
                    sha256: String(repeating: "cd", count: 32), source: "libsodium",
                    downloadLocation: "https://deb.example.org/pool/main/libs/libsodium23_1.0.18-1_amd64.deb")
            ],
            sources: [
                .git(name: "dpow", url: "https://github.com/KomodoPlatform/dPoW", commit: commit, tree: tree),
                .archive(name: "lib", url: "https://releases.example.org/lib-1.0.tar.gz", sha256: archiveSHA),
            ],
            created: "1970-01-01T00:00:00Z")
        let document = try JSONDecoder().decode(Document.self, from: bytes)
        let git = try #require(document.packages.first { $0.name == "dpow" })
        #expect(git.downloadLocation == "git+https://github.com/KomodoPlatform/dPoW@\(commit)")
        #expect(git.versionInfo == commit)
        #expect(git.sourceInfo.contains(tree), "the tree id is recorded: \(git.sourceInfo)")
        #expect(git.checksums == nil, "a commit id is not a file checksum")
        let archive = try #require(document.packages.first { $0.name == "lib" })
        #expect(archive.checksums == [["algorithm": "SHA256", "checksumValue": archiveSHA]])
        #expect(document.packages.count == 3)
        // Another source makes another document (the namespace follows the content).
        let other = try SBOM.document(
            image: "iguana", packages: [],
            sources: [
                .git(
                    name: "dpow", url: "https://github.com/KomodoPlatform/dPoW", commit: "0" + commit.dropFirst(),
                    tree: nil)
            ],
            created: "1970-01-01T00:00:00Z")
        #expect(other != bytes)

        try await withTemporaryDirectory("kiln-sbom") { tmp in
            let file = try tmp.write("iguana.spdx.json", String(decoding: bytes, as: UTF8.self))
            let checked = try Validators.spdx(file)
            #expect(checked.status == 0, "pyspdxtools refused the document: \(checked.stdout) \(checked.stderr)")
        }
    }
}
