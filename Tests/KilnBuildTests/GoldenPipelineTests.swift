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
            // The same values as BuildIntegrationTests.goldenDigests (encoding version 5).
            #expect(
                digests == [
                    "golden-base:1.0.0": "sha256:530f27158d4fa9baeec34d6bfc261a2189546fdddfe6d1076a43854a64c8d94f",
                    "golden-app:2.0.0": "sha256:2deafead24a7b2ca262335f2bfacb324fc34ee4d029bf1f029e29bdb159caf2e",
                    "golden-app:stable": "sha256:2deafead24a7b2ca262335f2bfacb324fc34ee4d029bf1f029e29bdb159caf2e",
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
