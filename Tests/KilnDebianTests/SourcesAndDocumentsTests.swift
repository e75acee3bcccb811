import Foundation
import KilnTestSupport
import Testing

@testable import KilnDebian

/// apt configuration, mirror and keyring selection, deb822 parsing, the dpkg status stanza and the SBOM.
@Suite struct SourcesAndDocumentsTests {
    @Test func parsesOneLineAndDeb822Sources() async throws {
        try await withTemporaryDirectory("kiln-apt") { tmp in
            try tmp.write(
                "sources.list",
                """
                # a comment
                deb [arch=amd64 signed-by=/k/one.gpg] http://127.0.0.1:9/one alpha main contrib
                deb-src http://127.0.0.1:9/src alpha main
                deb http://127.0.0.1:9/two beta main # trailing comment
                """)
            try tmp.write(
                "sources.list.d/x.sources",
                """
                Types: deb deb-src
                URIs: http://127.0.0.1:9/three
                Suites: gamma gamma-updates
                Components: main
                Signed-By: /k/three.gpg

                Types: deb
                URIs: http://127.0.0.1:9/off
                Suites: delta
                Components: main
                Enabled: no
                """)
            try tmp.write("sources.list.d/y.list.disabled", "deb http://127.0.0.1:9/ignored epsilon main\n")
            let sources = AptSources.load(root: tmp.path)
            #expect(
                sources.map(\.uri) == ["http://127.0.0.1:9/one", "http://127.0.0.1:9/two", "http://127.0.0.1:9/three"])
            #expect(sources[0].signedBy == "/k/one.gpg" && sources[0].components == ["main", "contrib"])
            #expect(sources[1].signedBy == nil && sources[1].suites == ["beta"])
            #expect(sources[2].suites == ["gamma", "gamma-updates"] && sources[2].signedBy == "/k/three.gpg")

            // Mirror: recipe > KILN_DEBIAN_MIRROR > host; keyring: recipe > Signed-By > Debian's.
            var request = PackageSetRequest(
                suite: "gamma-updates", components: [], packages: ["x"], architecture: "amd64")
            #expect(request.components == ["main"])
            #expect(
                try PackageSets.mirror(for: request, environment: [:], sources: sources) == "http://127.0.0.1:9/three")
            #expect(
                try PackageSets.mirror(
                    for: request, environment: ["KILN_DEBIAN_MIRROR": "http://127.0.0.1:8/env"], sources: sources)
                    == "http://127.0.0.1:8/env")
            #expect(
                PackageSets.keyring(for: request, mirror: "http://127.0.0.1:9/three/", sources: sources)
                    == "/k/three.gpg")
            #expect(
                PackageSets.keyring(for: request, mirror: "http://127.0.0.1:8/env", sources: sources)
                    == PackageSets.defaultKeyring)
            request.mirror = "http://127.0.0.1:7/recipe"
            request.keyring = "/k/recipe.gpg"
            #expect(
                try PackageSets.mirror(
                    for: request, environment: ["KILN_DEBIAN_MIRROR": "http://127.0.0.1:8/env"], sources: sources)
                    == "http://127.0.0.1:7/recipe")
            #expect(
                PackageSets.keyring(for: request, mirror: "http://127.0.0.1:9/three", sources: sources)
                    == "/k/recipe.gpg")
            let unknown = PackageSetRequest(suite: "delta", components: [], packages: ["x"], architecture: "amd64")
            #expect(throws: DebianError.noMirror(suite: "delta")) {
                try PackageSets.mirror(for: unknown, environment: [:], sources: sources)
            }
        }
    }

    @Test func deb822ParagraphsKeepContinuationsAndFilterFields() {
        let text = """
            Package: a
            Description: short
             long line one
             .
            Depends: b,
             c

            Package: b\r
            Version: 2

            """
        let all = Control.parse(Data(text.utf8))
        #expect(all.count == 2)
        #expect(all[0]["description"] == "short\n long line one\n .")
        #expect(Relation.parseField(all[0]["Depends"]).map { $0[0].name } == ["b", "c"])
        #expect(all[1]["Version"] == "2")
        let kept = Control.parse(Data(text.utf8), keep: ["package", "depends"])
        #expect(kept[0].fields.map(\.name) == ["Package", "Depends"])
    }

    @Test func releaseChecksumLines() {
        let files = Repository.sha256Files(
            "\n " + String(repeating: "ab", count: 32) + "  1234 main/binary-amd64/Packages.xz\n bad line\n")
        #expect(files["main/binary-amd64/Packages.xz"]?.size == 1234)
        #expect(files.count == 1)
    }

    @Test func armouredKeyringsAreDecoded() {
        let armour = """
            -----BEGIN PGP PUBLIC KEY BLOCK-----
            Comment: a header

            aGVs
            bG8=
            =AbCd
            -----END PGP PUBLIC KEY BLOCK-----
            -----BEGIN PGP PUBLIC KEY BLOCK-----

            IQ==
            -----END PGP PUBLIC KEY BLOCK-----

            """
        #expect(Repository.dearmour(Data(armour.utf8)) == Data("hello!".utf8))
        #expect(Repository.dearmour(Data([0x99, 0x01, 0x0d])) == nil)
    }

    @Test func statusStanzaPutsStatusAfterPackage() {
        let control = Control.parse(Data("Package: libz\nVersion: 1:1.2\nStatus: bogus\nArchitecture: amd64\n".utf8))[0]
        #expect(
            StatusDatabase.stanza(control)
                == "Package: libz\nStatus: install ok installed\nVersion: 1:1.2\nArchitecture: amd64\n")
        let entries = StatusDatabase.entries([UnpackedPackage(control: control, entries: [])])
        #expect(entries.map(\.path) == ["/var/lib/dpkg/status.d", "/var/lib/dpkg/status.d/libz"])
    }

    @Test func spdxDocumentListsEveryPackageDeterministically() throws {
        let a = SBOM.Package(
            name: "libstdc++6", version: "12.2.0-14", architecture: "amd64", sha256: "aa", source: "gcc-12",
            downloadLocation: "http://127.0.0.1/pool/x.deb")
        let b = SBOM.Package(
            name: "zlib1g", version: "1:1.2.13.dfsg-1", architecture: "amd64", sha256: "bb", source: "zlib",
            downloadLocation: "http://127.0.0.1/pool/z.deb")
        #expect(b.purl == "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64")
        let data = try SBOM.document(image: "base:1", packages: [b, a], created: "1970-01-01T00:00:00Z")
        #expect(try SBOM.document(image: "base:1", packages: [a, b], created: "1970-01-01T00:00:00Z") == data)
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        #expect(json["spdxVersion"] as? String == "SPDX-2.3")
        let packages = json["packages"] as! [[String: Any]]
        #expect(packages.map { $0["name"] as? String } == ["libstdc++6", "zlib1g"])
        #expect(packages[0]["SPDXID"] as? String == "SPDXRef-Package-deb-libstdc--6-amd64")
        #expect(packages[0]["sourceInfo"] as? String == "built package from: gcc-12")
        let checksum = (packages[1]["checksums"] as! [[String: String]])[0]
        #expect(checksum == ["algorithm": "SHA256", "checksumValue": "bb"])
        let ref = (packages[1]["externalRefs"] as! [[String: String]])[0]
        #expect(ref["referenceLocator"] == "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64")
        #expect((json["relationships"] as! [Any]).count == 2)
    }
}
