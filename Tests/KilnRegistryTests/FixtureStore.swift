import Foundation
import KilnBuild
import KilnRecipe
import KilnStore
import KilnTestSupport

/// Stores for registry tests, built through the library stages (plan → prepare → build) rather than `kiln build`
/// subprocesses: what these tests check starts after the build (a push, a pull, a registry verb).
enum FixtureStore {
    /// Two images sharing layers: golden-base:1.0.0 and golden-app:2.0.0 (also tagged stable) on top of it.
    static let golden = KilnBinary.packageRoot + "/Tests/Fixtures/golden"

    /// Builds the recipes at `paths` (files or directories) into the store at `store`, tagged as `kiln build`
    /// tags them (as `version`, as `--version` does, when given). The lock path sits beside the store, so a
    /// fixture never writes into the recipes' directory.
    @discardableResult
    static func build(_ paths: [String], into store: String, version: String? = nil, sourceDateEpoch: Int64 = 0)
        async throws -> OCILayout
    {
        let plan = try Pipeline.plan(
            RecipeSet.load(paths: paths), lockPath: store + ".kiln.lock",
            options: BuildOptions(sourceDateEpoch: sourceDateEpoch, version: version))
        let prepared = try await Pipeline.prepare(plan, store: store)
        let layout = try OCILayout(root: store)
        _ = try await Pipeline.build(prepared, into: layout)
        return layout
    }

    /// The golden images built into `directory/images`; returns the store's path.
    static func golden(in directory: TemporaryDirectory) async throws -> String {
        let store = directory.path + "/images"
        try await build([golden], into: store)
        return store
    }
}
