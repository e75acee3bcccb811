import Foundation
import KilnOCI
import KilnRecipe
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnBuild

/// A digest-pinned registry base through the library pipeline: pulled once by `prepare`, then found in the
/// store, and refused with the fix when `--offline` finds it missing.
@Suite struct RegistryBaseTests {
    func recipes(_ yaml: String, in dir: TemporaryDirectory, file: String) throws -> [Recipe] {
        let path = try dir.write(file, yaml)
        let (recipes, problems) = RecipeSet.parse(yaml, file: path)
        try #require(problems.isEmpty, "\(problems)")
        return recipes
    }

    func build(_ recipes: [Recipe], store: String, offline: Bool = false) async throws -> [BuiltImage] {
        let options = BuildOptions(sourceDateEpoch: 0, inputs: InputOptions(offline: offline))
        let plan = try Pipeline.plan(recipes, lock: LockFile(), lockPath: store + "-kiln.lock", options: options)
        let prepared = try await Pipeline.prepare(plan, store: store)
        return try await Pipeline.build(prepared, into: OCILayout(root: store))
    }

    @Test func registryBaseIsPulledOnceThenBuiltOffline() async throws {
        try await withTemporaryDirectory("kiln-regbase") { dir in
            try await withRegistry { registry in
                let base = try recipes(
                    """
                    name: base
                    version: "1"
                    layers:
                      - name: etc
                        files: [{path: /etc/base, content: "base"}]
                    """, in: dir, file: "base/base.yaml")
                let published = try await build(base, store: dir.path + "/a")
                try Shell.run([
                    "skopeo", "copy", "--dest-tls-verify=false", "oci:\(dir.path)/a:base:1",
                    "docker://\(registry.address)/ns/base:1",
                ])
                let app = try recipes(
                    """
                    name: app
                    version: "1"
                    base: \(registry.address)/ns/base:1@\(published[0].digest)
                    layers:
                      - name: etc
                        files: [{path: /etc/app, content: "app"}]
                    """, in: dir, file: "app/app.yaml")
                let first = try await build(app, store: dir.path + "/b")
                let requests = registry.log.components(separatedBy: "GET /v2/ns/base").count
                #expect(requests > 1, "the base was pulled from the registry")
                // Found in the store from now on: --offline builds the same image without a request.
                let again = try await build(app, store: dir.path + "/b", offline: true)
                #expect(again[0].digest == first[0].digest)
                #expect(registry.log.components(separatedBy: "GET /v2/ns/base").count == requests)
                let layout = try OCILayout(root: dir.path + "/b")
                let image = try layout.images(for: layout.resolve("app:1"))
                #expect(image.first?.manifest.layers.count == 2, "base layer + app layer")
                // A store without it, offline: refused naming the base and what to run.
                await #expect {
                    _ = try await build(app, store: dir.path + "/c", offline: true)
                } throws: { error in
                    let text = "\(error)"
                    return text.contains("app.yaml:") && text.contains("--offline")
                        && text.contains("kiln pull \(registry.address)/ns/base")
                }
                #expect(registry.log.components(separatedBy: "GET /v2/ns/base").count == requests)
            }
        }
    }
}
