import Foundation
import KilnTestSupport
import Testing

@testable import KilnSign

/// The sigstore policy-controller `ClusterImagePolicy` that `deploy-refs --key --format kubernetes` writes,
/// checked by check-jsonschema (PyPI) against a schema written from policy-controller's CRD and admission rules
/// (Tests/Fixtures/schemas, its sources named there), and read back for what it requires.
@Suite struct ClusterImagePolicyTests {
    static let schema =
        KilnBinary.packageRoot + "/Tests/Fixtures/schemas/policy-controller-clusterimagepolicy-v1beta1.schema.json"

    /// `check-jsonschema` of each document of a YAML file against the ClusterImagePolicy schema (it reads one
    /// document per file). Fails when any fails, or when there is none.
    static func validate(_ file: String) throws -> CommandResult {
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let documents = text.components(separatedBy: "\n---\n").dropFirst()
        var last: CommandResult?
        for (n, document) in documents.enumerated() {
            let part = file + ".\(n).yaml"
            try Data(document.utf8).write(to: URL(fileURLWithPath: part))
            let result = try Shell.run(
                [try Validators.bin() + "/check-jsonschema", "--schemafile", schema, part], check: false)
            if !result.succeeded { return result }
            last = result
        }
        return try #require(last, "no document after the header comment")
    }

    /// The YAML file's documents as JSON objects, read by the venv's YAML parser (ruamel.yaml, check-jsonschema's
    /// own).
    static func load(_ file: String) throws -> [[String: Any]] {
        let script =
            "import sys, json; from ruamel.yaml import YAML; "
            + "print(json.dumps(list(YAML(typ='safe').load_all(open(sys.argv[1])))))"
        let printed = try Shell.run([try Validators.bin() + "/python3", "-c", script, file]).stdout
        return try #require(try JSONSerialization.jsonObject(with: Data(printed.utf8)) as? [[String: Any]])
    }

    /// Checks a written file: valid under the schema; two policies for `scope`'s images, each with one authority
    /// per key: one requires a key's signature, the other its signed SLSA provenance (policy-controller checks an
    /// authority's attestations instead of its signatures, ORs a policy's authorities and ANDs the policies).
    static func expectPolicy(at file: String, scope: String, publicKeyPEMs: [String]) throws {
        let checked = try validate(file)
        #expect(checked.succeeded, "\(checked.stdout)\(checked.stderr)")
        let policies = try load(file)
        #expect(policies.count == 2)
        var attested: [[String]] = []
        for policy in policies {
            #expect(policy["apiVersion"] as? String == "policy.sigstore.dev/v1beta1")
            let spec = try #require(policy["spec"] as? [String: Any])
            #expect((spec["images"] as? [[String: Any]])?.map { $0["glob"] as? String } == [scope + "/**"])
            let authorities = try #require(spec["authorities"] as? [[String: Any]])
            #expect(authorities.map { ($0["key"] as? [String: Any])?["data"] as? String } == publicKeyPEMs)
            for authority in authorities {
                let attestations = authority["attestations"] as? [[String: Any]] ?? []
                attested.append(attestations.compactMap { $0["predicateType"] as? String })
            }
        }
        let provenance = ["https://slsa.dev/provenance/v1"]
        #expect(
            attested == Array(repeating: [], count: publicKeyPEMs.count)
                + Array(repeating: provenance, count: publicKeyPEMs.count))
    }

    @Test func policyRequiresTheKeyForTheReleaseNamespace() async throws {
        try await withTemporaryDirectory("kiln-cip") { tmp in
            let pem = try PrivateKey.generate().publicKey().pem
            let scope = "registry.example.com:5000/komodo"
            let yaml = ClusterImagePolicy.yaml(scope: scope, publicKeyPEMs: [pem])
            try Self.expectPolicy(at: try tmp.write("cip.yaml", yaml), scope: scope, publicKeyPEMs: [pem])
            // While keys rotate: one authority per key in each policy.
            let next = try PrivateKey.generate().publicKey().pem
            let rotating = ClusterImagePolicy.yaml(scope: scope, publicKeyPEMs: [pem, next])
            try Self.expectPolicy(
                at: try tmp.write("rotating.yaml", rotating), scope: scope, publicKeyPEMs: [pem, next])
            #expect(yaml.contains("name: \"kiln-release-registry-example-com-5000-komodo-signature\"\n"))
            #expect(yaml.contains("name: \"kiln-release-registry-example-com-5000-komodo-provenance\"\n"))

            // The schema has teeth: what policy-controller would refuse (or silently prune) fails it.
            let broken: [(what: String, text: String)] = [
                ("no authority", yaml.replacingOccurrences(of: "  authorities:", with: "  other:")),
                ("a misspelt field", yaml.replacingOccurrences(of: "    key:", with: "    keys:")),
                ("a glob policy-controller refuses", yaml.replacingOccurrences(of: "/**\"", with: "/ **\"")),
                ("no key data", yaml.replacingOccurrences(of: "BEGIN PUBLIC KEY", with: "BEGIN PRIVATE KEY")),
                (
                    "a short predicate type",
                    yaml.replacingOccurrences(of: "https://slsa.dev/provenance/v1", with: "slsa")
                ),
            ]
            for (what, text) in broken {
                #expect(text != yaml, "\(what): the mutation changed nothing")
                let refused = try Self.validate(try tmp.write("broken.yaml", text))
                #expect(!refused.succeeded, "the schema accepted \(what)")
            }
        }
    }

    @Test func namesAreDNSLabels() {
        #expect(
            ClusterImagePolicy.name(scope: "127.0.0.1:5000/rel", requiring: "signature")
                == "kiln-release-127-0-0-1-5000-rel-signature")
        #expect(
            ClusterImagePolicy.name(scope: "Registry.Example.com/a--b_c", requiring: "provenance")
                == "kiln-release-registry-example-com-a-b-c-provenance")
        let long = ClusterImagePolicy.name(scope: String(repeating: "a.", count: 60), requiring: "provenance")
        #expect(long.count <= 63 && !long.contains("--"), "\(long)")
    }
}
