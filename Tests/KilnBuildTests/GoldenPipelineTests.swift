import Foundation
import KilnOCI
import KilnRecipe
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnBuild

/// The determinism contract through the library stages (the CLI's goldenDigests test checks the same digests
/// end to end): the pipeline, not its caller, decides every byte.
@Suite struct GoldenPipelineTests {
    @Test func libraryPipelineGivesTheGoldenDigestsAndBuildsThePlan() async throws {
        try await withTemporaryDirectory("kiln-golden-lib") { dir in
            let set = try RecipeSet.load(paths: [KilnBinary.packageRoot + "/Tests/Fixtures/golden"])
            let plan = try Pipeline.plan(
                set, lockPath: dir.path + "/kiln.lock", options: BuildOptions(sourceDateEpoch: 0, threads: 1))
            let store = dir.path + "/images"
            let prepared = try await Pipeline.prepare(plan, store: store)
            let built = try await Pipeline.build(prepared, into: OCILayout(root: store))
            let digests = Dictionary(
                uniqueKeysWithValues: built.flatMap { image in
                    image.references.map { ($0, image.digest.description) }
                })
            // The same values as BuildIntegrationTests.goldenDigests (encoding version 3).
            #expect(
                digests == [
                    "golden-base:1.0.0": "sha256:bbaa8b34353efa7eef421867a2599d8cf7275506f71399ed96d87393108a2e3a",
                    "golden-app:2.0.0": "sha256:38ea3aebd3f24cdfb2fbcb2cd03b93897f02fba6a1fcc7a5e1e12b84e4286f0e",
                    "golden-app:stable": "sha256:38ea3aebd3f24cdfb2fbcb2cd03b93897f02fba6a1fcc7a5e1e12b84e4286f0e",
                ])
            // Every image is built from exactly the layers its plan lists, in plan order.
            #expect(built.map(\.name) == plan.images.map(\.name))
            for (image, planned) in zip(built, plan.images) {
                #expect(image.layers.map(\.name) == planned.platforms[0].layers.map(\.name))
                #expect(image.references == planned.references)
            }
            let tags = try OCILayout(root: store).tags().map(\.reference).sorted()
            #expect(tags == digests.keys.sorted())
        }
    }
}
