import Foundation
import KilnKomodo
import KilnRecipe
import Testing

/// recipes/iguana.yaml names dPoW's commit twice: as its build step's git source (what is compiled) and as the
/// image's `org.opencontainers.image.revision` label (what `podman inspect` and registries show). Updating one
/// without the other would label an image with a commit it was not built from.
@Suite struct IguanaRecipeTests {
    static let recipes =
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path + "/recipes"

    @Test func theRevisionLabelIsTheCommitTheBuildCompiles() throws {
        let set = try RecipeSet.load(paths: [Self.recipes], derivations: [KomodoMatrix()])
        let iguana = try #require(set.recipes.first { $0.name == "iguana" })
        let sources = iguana.builds.flatMap(\.sources)
        let dpow = try #require(sources.first { $0.name == "dpow" })
        guard case .git(let url, let commit, _) = dpow.kind else {
            Issue.record("iguana's dpow source is not a git source: \(dpow.kind)")
            return
        }
        let labels = iguana.settings.labels ?? [:]
        #expect(labels["org.opencontainers.image.revision"] == commit)
        #expect(labels["org.opencontainers.image.source"] == url)
    }
}
