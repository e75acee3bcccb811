import Foundation
import KilnTestSupport
import Testing

@testable import KilnSign

/// While keys rotate, a node's policy.json must accept a signature by either key: one `sigstoreSigned`
/// requirement with `keyDatas` (two requirements in the scope's list would each have to pass). Judged by Debian
/// 13's skopeo against a real docker-registry, as a node with that policy would pull.
@Suite(.serialized) struct KeyRotationTests {
    typealias Oracle = SignatureOracleTests

    @Test func eitherKeyOfARotationIsAccepted() async throws {
        _ = try await SigstoreOracle.with { skopeo in
            try await withRegistry(directory: "kiln-rotation") { registry, tmp in
                let layout = try Oracle.makeStore(tmp)
                let r = registry.address
                let names = ["old", "new", "other"]
                try await Oracle.push(layout, names.map { ("one:1", "k/\($0)") }, to: registry)
                for name in names {
                    try Oracle.kiln(["key", "generate", tmp.path + "/" + name])
                    try Oracle.kiln(["sign", "\(r)/k/\(name):1", "--key", tmp.path + "/\(name).key"])
                }
                func pem(_ name: String) throws -> String {
                    try PublicKey.load(path: tmp.path + "/\(name).pub").pem
                }
                func node(_ keys: [String]) throws -> String {
                    let directory = tmp.path + "/node-" + keys.joined(separator: "-")
                    try FileManager.default.createDirectory(
                        atPath: directory + "/registries.d", withIntermediateDirectories: true)
                    try ContainersPolicy.policy(scope: "\(r)/k", publicKeyPEMs: try keys.map(pem))
                        .write(to: URL(fileURLWithPath: directory + "/policy.json"))
                    try Data(ContainersPolicy.registriesD(scope: "\(r)/k").utf8)
                        .write(to: URL(fileURLWithPath: directory + "/registries.d/kiln-release.yaml"))
                    return directory
                }
                func pulls(_ name: String, on directory: String) throws -> CommandResult {
                    try Shell.run(
                        [
                            skopeo, "--policy", directory + "/policy.json", "--registries.d",
                            directory + "/registries.d", "copy", "--remove-signatures", "--src-tls-verify=false",
                            "docker://\(r)/k/\(name):1",
                            "oci:\(tmp.path)/pulled-\(UUID().uuidString.lowercased()):x",
                        ], check: false)
                }
                let rotating = try node(["old", "new"])
                #expect(try String(contentsOfFile: rotating + "/policy.json", encoding: .utf8).contains("keyDatas"))
                for accepted in ["old", "new"] {
                    let result = try pulls(accepted, on: rotating)
                    #expect(result.succeeded, "signed by \(accepted): \(result.stderr)")
                }
                let refused = try pulls("other", on: rotating)
                #expect(!refused.succeeded && refused.stderr.contains("ignature"), "\(refused.stderr)")
                // After the rotation, the old key's signature alone no longer passes.
                let rotated = try node(["new"])
                #expect(try pulls("new", on: rotated).succeeded)
                #expect(!(try pulls("old", on: rotated).succeeded))
                // Kiln's own check takes the keys the same way: any of them.
                for name in ["old", "new"] {
                    let verdict = try Oracle.kiln(
                        [
                            "verify", "\(r)/k/\(name):1", "--key", tmp.path + "/old.pub", "--key",
                            tmp.path + "/new.pub", "--signatures-only",
                        ], check: false)
                    #expect(verdict.status == 0, "\(name): \(verdict.stdout)")
                }
            }
        }
    }
}
