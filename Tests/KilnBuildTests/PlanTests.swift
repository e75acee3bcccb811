import Foundation
import KilnDebian
import KilnOCI
import KilnRecipe
import KilnTestSupport
import Testing

@testable import KilnBuild

/// The plan as the build's one description: compile jobs with the keys it can know, pending split layers
/// settled from the prepared package sets alone.
@Suite struct PlanTests {
    static let gcc = PinnedPackage(
        name: "gcc", version: "12", architecture: "amd64", sha256: String(repeating: "ef", count: 32),
        filename: "pool/gcc.deb")

    static func plan(source: String, in dir: TemporaryDirectory, lockEnvironment: Bool) throws -> BuildPlan {
        let yaml = """
            name: app
            version: "1"
            builds:
              - name: b
                environment: {suite: bookworm, packages: [gcc]}
                sources:
                  app: \(source)
                run: "true"
                outputs: [/out/x]
            layers:
              - name: l
                add: [{from: b, src: x, to: /x}]
            """
        let file = try dir.write("recipes/app.yaml", yaml)
        try dir.write("recipes/src/main.c", "int main(void) { return 0; }\n")
        let (recipes, problems) = RecipeSet.parse(yaml, file: file)
        try #require(problems.isEmpty, "\(problems)")
        var lock = LockFile()
        if lockEnvironment {
            lock.packages["app/build:b"] = [Self.gcc]
            lock.packageRequests["app/build:b"] = "bookworm main amd64: gcc"
        }
        return try Pipeline.plan(
            recipes, lock: lock, lockPath: dir.path + "/recipes/kiln.lock", options: BuildOptions(sourceDateEpoch: 0))
    }

    /// A step whose environment the lock pins and whose sources are pinned by content has its cache key in the
    /// plan (what lets a runner take its outputs from a registry cache without fetching anything for it), the
    /// same key compile computes from the prepared values; a `dir:` source or an unlocked environment leaves
    /// it to compile.
    @Test func buildStepsAreCompileJobsWithTheKeyThePlanCanKnow() async throws {
        try await withTemporaryDirectory("kiln-plan-builds") { dir in
            let hex = String(repeating: "12", count: 32)
            let archive = "{url: \"https://example.invalid/app.tar.gz\", sha256: \"\(hex)\"}"
            let plan = try Self.plan(source: archive, in: dir, lockEnvironment: true)
            #expect(plan.packageSets.map(\.source) == [.lock])
            let job = try #require(plan.builds.first)
            #expect(job.id == "app/b" && job.environment == "app/build:b")
            #expect(job.sources.first?.sha256 == (try Digest(sha256Hex: hex)))
            let expected = Pipeline.compileKey(
                try #require(job.spec), environment: [Self.gcc],
                sources: [ResolvedSource(name: "app", directory: "/elsewhere", id: "sha256:" + hex)],
                options: plan.options)
            #expect(job.key == expected)
            // The layer takes the step's output by the job's id, not by reading the recipe again.
            guard
                case .buildOutput(let build, _, let path, let placement)? = plan.images[0].platforms[0].layers[0]
                    .contents
                    .first
            else {
                Issue.record("the layer does not hold the build output")
                return
            }
            #expect(build == job.id && path == "/out/x" && placement.to == "/x", "\(build) \(path) \(placement.to)")
            // Printed as it is built: the compile job is part of --dry-run --json.
            let json = String(decoding: try CanonicalJSON.encode(plan), as: UTF8.self)
            #expect(json.contains("\"builds\"") && json.contains(expected))

            #expect(try Self.plan(source: archive, in: dir, lockEnvironment: false).builds.first?.key == nil)
            #expect(try Self.plan(source: "{dir: src}", in: dir, lockEnvironment: true).builds.first?.key == nil)
        }
    }

    /// A split package set the lock does not cover is one pending layer until prepare resolves it; settling
    /// the plan with the resolved packages (no recipe involved) gives one layer per package, each holding
    /// that package.
    @Test func pendingSplitLayersSettleIntoOneLayerPerPackage() async throws {
        try await withTemporaryDirectory("kiln-plan-settle") { dir in
            let recipes = try PipelineTests.recipes(in: dir)
            let plan = try Pipeline.plan(
                recipes, lock: LockFile(), lockPath: dir.path + "/kiln.lock", options: BuildOptions(sourceDateEpoch: 0))
            #expect(plan.images[0].platforms[0].layers.map(\.name) == ["runtime/*", "config", "accounts"])
            let a = PinnedPackage(name: "a", version: "1", architecture: "all", sha256: "", filename: "a.deb")
            let b = PinnedPackage(name: "b", version: "2", architecture: "amd64", sha256: "", filename: "b.deb")
            let settled = plan.settled(with: ["app/runtime": [a, b]])
            let layers = settled.images[0].platforms[0].layers
            #expect(layers.map(\.name) == ["runtime/a", "runtime/b", "config", "accounts"])
            #expect(layers.allSatisfy { $0.pending != true })
            guard case .package(let set, let name, _)? = layers[1].contents.first else {
                Issue.record("the package layer holds no package")
                return
            }
            #expect(set == "app/runtime" && name == "b")
            #expect(settled.packageSets.first?.packages?.map(\.name) == ["a", "b"])
        }
    }
}
