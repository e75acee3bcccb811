import Foundation
import KilnOCI
import KilnTestSupport
import Testing

/// Build provenance as `kiln inspect --provenance` prints it: an in-toto Statement v1 with a SLSA provenance
/// v1 predicate, checked against a schema written from both specifications (Tests/Fixtures/schemas, sources
/// named there) by check-jsonschema from PyPI, and for what it records.
@Suite struct ProvenanceTests {
    static let schema = KilnBinary.packageRoot + "/Tests/Fixtures/schemas/slsa-provenance-v1.schema.json"

    @Test func everyBuiltImageHasValidProvenance() async throws {
        try await withTemporaryDirectory("kiln-provenance") { tmp in
            let payload = "a downloaded input\n"
            try tmp.write("served/input.txt", payload)
            let sha = Digest.sha256(payload).encoded
            try await withFileServer(root: tmp.path + "/served") { server in
                try tmp.write(
                    "recipes/base.yaml",
                    """
                    name: pbase
                    version: "1.0.0"
                    layers:
                      - name: files
                        files:
                          - path: /etc/base.conf
                            content: "base\\n"
                    """)
                try tmp.write(
                    "recipes/app.yaml",
                    """
                    name: papp
                    version: "2.0.0"
                    base: pbase
                    layers:
                      - name: input
                        add:
                          - url: \(server.url)/input.txt
                            sha256: \(sha)
                            to: /opt/input.txt
                    """)
                let store = tmp.path + "/images"
                try KilnBinary.run(
                    ["build", tmp.path + "/recipes", "--store", store], environment: ["SOURCE_DATE_EPOCH": "0"])
                let printed = try KilnBinary.run(["inspect", "papp:2.0.0", "--provenance", "--store", store]).stdout
                let file = try tmp.write("provenance.json", printed)
                let checked = try Shell.run(
                    [try Validators.bin() + "/check-jsonschema", "--schemafile", Self.schema, file], check: false)
                #expect(checked.succeeded, "\(checked.stdout)\(checked.stderr)")

                let statement = try JSONSerialization.jsonObject(with: Data(printed.utf8)) as! [String: Any]
                let digests = try KilnBinary.imageDigests(store)
                let subject = (statement["subject"] as! [[String: Any]])[0]
                #expect(subject["name"] as? String == "papp")
                #expect("sha256:" + ((subject["digest"] as! [String: String])["sha256"] ?? "") == digests["papp:2.0.0"])
                let predicate = statement["predicate"] as! [String: Any]
                let definition = predicate["buildDefinition"] as! [String: Any]
                let parameters = definition["externalParameters"] as! [String: Any]
                let recipes = parameters["recipes"] as! [[String: Any]]
                let appBytes = try Data(contentsOf: URL(fileURLWithPath: tmp.path + "/recipes/app.yaml"))
                #expect(
                    recipes.contains {
                        $0["name"] as? String == "app.yaml"
                            && ($0["digest"] as? [String: String])?["sha256"] == Digest.sha256(appBytes).encoded
                    })
                #expect(recipes.contains { $0["name"] as? String == "base.yaml" })
                let dependencies = definition["resolvedDependencies"] as! [[String: Any]]
                #expect(
                    dependencies.contains {
                        $0["uri"] as? String == "\(server.url)/input.txt"
                            && ($0["digest"] as? [String: String])?["sha256"] == sha
                    })
                // The base recipe's image, by digest.
                let baseManifest = try #require(digests["pbase:1.0.0"])
                #expect(
                    dependencies.contains {
                        $0["name"] as? String == "pbase"
                            && "sha256:" + (($0["digest"] as? [String: String])?["sha256"] ?? "") == baseManifest
                    })
                let builder = (predicate["runDetails"] as! [String: Any])["builder"] as! [String: Any]
                #expect((builder["version"] as? [String: String])?["kiln"] == KilnVersion.current)
                // The base's own provenance validates too, and a rebuild writes the same bytes.
                let base = try tmp.write(
                    "base.json",
                    try KilnBinary.run(["inspect", "pbase:1.0.0", "--provenance", "--store", store]).stdout)
                #expect(
                    try Shell.run(
                        [try Validators.bin() + "/check-jsonschema", "--schemafile", Self.schema, base], check: false
                    ).succeeded)
                try KilnBinary.run(
                    ["build", tmp.path + "/recipes", "--store", tmp.path + "/again"],
                    environment: ["SOURCE_DATE_EPOCH": "0"])
                let again = try KilnBinary.run(
                    ["inspect", "papp:2.0.0", "--provenance", "--store", tmp.path + "/again"]
                ).stdout
                #expect(again == printed)

                // The SBOM: named by the image, not its version (one SBOM per digest), read back from the store
                // and, once pushed, from the registry (fallback tag: docker-registry has no referrers API).
                let sbom = try KilnBinary.run(["sbom", "papp:2.0.0", "--store", store]).stdout
                let spdx = try JSONSerialization.jsonObject(with: Data(sbom.utf8)) as! [String: Any]
                #expect(spdx["name"] as? String == "papp")
                try await withRegistry { registry in
                    try KilnBinary.run(["push", "papp:2.0.0", "--to", "\(registry.address)/ns", "--store", store])
                    let remote = try KilnBinary.run(["sbom", "\(registry.address)/ns/papp:2.0.0"]).stdout
                    #expect(remote == sbom)
                    // A pull brings the SBOM along into the store.
                    let pulled = tmp.path + "/pulled"
                    try KilnBinary.run([
                        "pull", "\(registry.address)/ns/papp:2.0.0", "--tag", "papp:pulled", "--store", pulled,
                    ])
                    let again = try KilnBinary.run(["inspect", "papp:pulled", "--sbom", "--store", pulled]).stdout
                    #expect(again == sbom)
                }
            }
        }
    }
}
