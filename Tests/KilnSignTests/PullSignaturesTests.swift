import Foundation
import KilnOCI
import KilnRegistry
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnSign

/// `kiln pull` keeps an image's cosign signatures and attestations in the store, where `kiln verify --key`
/// checks them, and a push of the pulled image publishes them again: `kiln verify --key` and Debian 13's skopeo (a `sigstoreSigned` policy) accept the
/// re-pushed copy in another registry.
@Suite(.serialized) struct PullSignaturesTests {
    typealias Oracle = SignatureOracleTests

    /// The store's attachment entries, by tag.
    static func storedAttachments(_ store: String) throws -> [String] {
        try OCILayout(root: store, create: false).index().manifests.compactMap {
            $0.annotations?[CosignAttachments.tagKey]
        }.sorted()
    }

    @Test func pulledSignaturesGoAlongWhenPushedAgain() async throws {
        _ = try await SigstoreOracle.with { skopeo in
            try await withRegistry { test in
                try await withRegistry(directory: "kiln-pull-sig") { production, tmp in
                    let layout = try Oracle.makeStore(tmp)
                    try await Oracle.push(layout, [("multi:1", "t/multi"), ("one:1", "t/unsigned")], to: test)
                    let key = tmp.path + "/release"
                    try Oracle.kiln(["key", "generate", key])
                    try Oracle.kiln(["sign", "\(test.address)/t/multi:1", "--key", key + ".key"])
                    let release = try EncryptedKey.load(path: key + ".key", password: Array(Oracle.password.utf8))
                    try await Oracle.withClient(test) { client in
                        try await ProvenanceVerifyTests.attest(client, "t/multi", key: release)
                    }

                    let store = tmp.path + "/pulled"
                    for _ in 0..<2 {
                        try Oracle.kiln([
                            "pull", "\(test.address)/t/multi:1", "--platform", "linux/amd64", "--platform",
                            "linux/arm64", "--tag", "multi:1", "--store", store,
                        ])
                    }
                    try Oracle.kiln([
                        "pull", "\(test.address)/t/unsigned:1", "--tag", "unsigned:1", "--store", store,
                    ])
                    // The index's and both platforms' signatures, both platforms' attestations; once each after
                    // two pulls; none for the unsigned image.
                    let stored = try Self.storedAttachments(store)
                    #expect(stored.filter { $0.hasSuffix(".sig") }.count == 3, "\(stored)")
                    #expect(stored.filter { $0.hasSuffix(".att") }.count == 2, "\(stored)")
                    let pulled = try OCILayout(root: store, create: false)
                    #expect(try pulled.fsck().problems.isEmpty)
                    // Verified in the store, with what the pull kept; the unsigned image is refused.
                    let inStore = try Oracle.kiln(
                        ["verify", "multi:1", "--key", key + ".pub", "--store", store], check: false)
                    #expect(
                        inStore.status == 0 && inStore.stdout.contains("provenance: valid"), "\(inStore.stdout)")
                    let storedUnsigned = try Oracle.kiln(
                        ["verify", "unsigned:1", "--key", key + ".pub", "--store", store], check: false)
                    #expect(storedUnsigned.status == 1 && storedUnsigned.stdout.contains("no signature: \(store)"))
                    // Pulled under its registry name, it is found in the store with an explicit --store.
                    try Oracle.kiln([
                        "pull", "\(test.address)/t/multi:1", "--platform", "linux/arm64", "--store", store,
                    ])
                    let byName = try Oracle.kiln(
                        ["verify", "\(test.address)/t/multi:1", "--key", key + ".pub", "--store", store],
                        check: false)
                    #expect(
                        byName.status == 0 && byName.stdout.contains("OK \(test.address)/t/multi:1"),
                        "\(byName.stdout)")

                    // Pushed again from the store to another registry.
                    try await Oracle.withClient(production) { client in
                        _ = try await Pusher(layout: pulled, client: client).push(
                            try [("multi:1", "p/multi"), ("unsigned:1", "p/unsigned")].map { image in
                                var descriptor = try pulled.resolve(image.0)
                                descriptor.annotations = nil
                                return .init(repository: image.1, descriptor: descriptor, tags: ["1"])
                            })
                    }
                    let copy = "\(production.address)/p/multi:1"
                    let verified = try Oracle.kiln(["verify", copy, "--key", key + ".pub"], check: false)
                    #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
                    #expect(verified.stdout.contains("provenance: valid"), "\(verified.stdout)")
                    let unsigned = try Oracle.kiln(
                        ["verify", "\(production.address)/p/unsigned:1", "--key", key + ".pub"], check: false)
                    #expect(unsigned.status == 1)
                    // The signatures name the test repository: production's policy maps it.
                    let policy = try SigstorePolicy(
                        skopeo: skopeo, registry: production.address, publicKey: key + ".pub",
                        signedIdentity: """
                            {"type": "remapIdentity", "prefix": "\(production.address)/p", \
                            "signedPrefix": "\(test.address)/t"}
                            """)
                    let accepted = try policy.copy(copy, all: true)
                    #expect(accepted.succeeded, "skopeo refused the re-pushed copy: \(accepted.stderr)")
                    let refused = try policy.copy("\(production.address)/p/unsigned:1")
                    #expect(!refused.succeeded && refused.stderr.contains("ignature"), "\(refused.stderr)")
                }
            }
        }
    }
}
