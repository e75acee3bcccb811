import Foundation
import KilnOCI
import KilnTestSupport
import Testing

/// A multi-platform image has one SPDX document per platform: `kiln inspect --sbom --platform P` and
/// `kiln sbom --platform P` (from the store and, once pushed, from the registry) each print one document that
/// SPDX's own `pyspdxtools -i` accepts, naming that platform's own input.
@Suite struct PlatformSBOMTests {
    @Test func eachPlatformsSBOMIsAValidSPDXDocument() async throws {
        try await withTemporaryDirectory("kiln-platform-sbom") { tmp in
            var sha: [String: String] = [:]
            for arch in ["amd64", "arm64"] {
                let payload = "the \(arch) input\n"
                try tmp.write("served/\(arch).txt", payload)
                sha[arch] = Digest.sha256(payload).encoded
            }
            try await withFileServer(root: tmp.path + "/served") { server in
                try tmp.write(
                    "recipes/mp.yaml",
                    """
                    name: mp
                    version: "1.0.0"
                    platforms: [linux/amd64, linux/arm64]
                    layers:
                      - name: input
                        add:
                          - url: \(server.url)/amd64.txt
                            sha256: \(sha["amd64"]!)
                            to: /opt/input.txt
                            platforms: linux/amd64
                          - url: \(server.url)/arm64.txt
                            sha256: \(sha["arm64"]!)
                            to: /opt/input.txt
                            platforms: [linux/arm64]
                    """)
                let store = tmp.path + "/images"
                try KilnBinary.run(
                    ["build", tmp.path + "/recipes", "--store", store],
                    environment: ["SOURCE_DATE_EPOCH": "0", "KILN_CACHE_DIR": tmp.path + "/cache"])
                try await withRegistry { registry in
                    try KilnBinary.run(["push", "mp:1.0.0", "--to", "\(registry.address)/ns", "--store", store])
                    for arch in ["amd64", "arm64"] {
                        let platform = "linux/\(arch)"
                        let printed = [
                            try KilnBinary.run([
                                "inspect", "mp:1.0.0", "--sbom", "--platform", platform, "--store", store,
                            ]),
                            try KilnBinary.run(["sbom", "mp:1.0.0", "--platform", platform, "--store", store]),
                            try KilnBinary.run(["sbom", "\(registry.address)/ns/mp:1.0.0", "--platform", platform]),
                        ].map(\.stdout)
                        // The same document every way, for this platform only.
                        #expect(Set(printed).count == 1, "\(platform): the three ways printed different documents")
                        #expect(printed[0].contains(sha[arch]!), "\(platform): \(printed[0])")
                        let other = arch == "amd64" ? "arm64" : "amd64"
                        #expect(!printed[0].contains(sha[other]!), "\(platform) lists \(other)'s input")
                        // pyspdxtools' download-location pattern wants a host name with a top-level domain, which
                        // the loopback server lacks (as DebianBuildTests notes): validated with the host renamed.
                        let named = printed[0].replacingOccurrences(of: server.url, with: "https://releases.example")
                        let file = try tmp.write("mp-\(arch).spdx.json", named)
                        let validated = try Validators.spdx(file)
                        #expect(validated.succeeded, "pyspdxtools refused \(platform)'s SBOM: \(validated.stderr)")
                    }
                }
            }
        }
    }
}
