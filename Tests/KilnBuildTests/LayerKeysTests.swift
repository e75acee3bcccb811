import Foundation
import KilnDebian
import KilnLayer
import KilnOCI
import KilnRecipe
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnBuild

/// Plan keys (`LayerKeys`): a layer's key covers every pinned input, its placement, the compression, the mtime
/// and the encoding version, and nothing that leaves its bytes alone (the version it is tagged with).
@Suite struct LayerKeysTests {
    static let tool = String(repeating: "ab", count: 32)
    static let pin = PinnedPackage(
        name: "hello", version: "2.10-3", architecture: "amd64", sha256: String(repeating: "cd", count: 32),
        filename: "pool/main/h/hello/hello_2.10-3_amd64.deb", source: "hello")

    struct Variant {
        var sha256 = LayerKeysTests.tool
        var to = "/opt/"
        var mode = "0755"
        var extract = "tool/*"
        var pin = LayerKeysTests.pin
        var version = "1"
        var compression: LayerCompression?
        var epoch: Int64 = 1_700_000_000
        var content = "hello"
        var locked = true
    }

    /// The plan keys of the recipe's three layers (url input, package set, inline file) as `variant` writes it.
    static func keys(_ variant: Variant = Variant(), in dir: TemporaryDirectory) throws -> [String?] {
        let yaml = """
            name: app
            version: "\(variant.version)"
            layers:
              - name: tool
                add:
                  - {url: "https://example.invalid/tool.tar.gz", sha256: "\(variant.sha256)", extract: ["\(variant.extract)"], to: \(variant.to), mode: "\(variant.mode)"}
              - name: debs
                packages: {suite: bookworm, packages: [hello]}
              - name: etc
                files: [{path: /etc/app.conf, content: "\(variant.content)"}]
            """
        let file = try dir.write("recipes/app.yaml", yaml)
        let (recipes, problems) = RecipeSet.parse(yaml, file: file)
        try #require(problems.isEmpty, "\(problems)")
        var lock = LockFile()
        if variant.locked {
            lock.packages["app/debs"] = [variant.pin]
            lock.packageRequests["app/debs"] = "bookworm main amd64: hello"
        }
        let plan = try Pipeline.plan(
            recipes, lock: lock, lockPath: dir.path + "/recipes/kiln.lock",
            options: BuildOptions(sourceDateEpoch: variant.epoch, compression: variant.compression))
        return plan.images[0].platforms[0].layers.map(\.key)
    }

    @Test func theKeyFollowsEveryPinnedInputAndPlacementAndNotTheVersion() throws {
        let dir = try TemporaryDirectory("kiln-layerkeys")
        defer { dir.remove() }
        let base = try Self.keys(in: dir)
        #expect(base.count == 3 && base.allSatisfy { $0 != nil }, "\(base)")
        #expect(Set(base).count == 3)
        func changed(_ edit: (inout Variant) -> Void) throws -> [String?] {
            var variant = Variant()
            edit(&variant)
            return try Self.keys(variant, in: dir)
        }
        // The url input's digest, where it lands, its mode and the members taken: only its layer changes.
        for edit: (inout Variant) -> Void in [
            { $0.sha256 = String(repeating: "ef", count: 32) }, { $0.to = "/usr/local/" }, { $0.mode = "0700" },
            { $0.extract = "tool/bin/*" },
        ] {
            let keys = try changed(edit)
            #expect(keys[0] != base[0] && keys[1] == base[1] && keys[2] == base[2], "\(keys)")
        }
        // A locked .deb of another sha256 or version changes the package layer only.
        let other = try changed { $0.pin.sha256 = String(repeating: "01", count: 32) }
        #expect(other[1] != base[1] && other[0] == base[0])
        #expect(try changed { $0.pin.version = "2.10-4" }[1] != base[1])
        // The source package is recorded for the SBOM: it is not part of the layer's bytes.
        #expect(try changed { $0.pin.source = "other" } == base)
        #expect(try changed { $0.content = "bye" }[2] != base[2])
        // Compression and mtime change every layer.
        for keys in [try changed { $0.compression = .zstd }, try changed { $0.epoch = 1_700_000_001 }] {
            #expect(zip(keys, base).allSatisfy { $0 != $1 }, "\(keys)")
        }
        // The version an image is tagged with leaves its layers alone.
        #expect(try changed { $0.version = "2" } == base)
    }

    @Test func theKeyFollowsTheEncodingVersionAndLocalFilesAreKeyedByContent() throws {
        let dir = try TemporaryDirectory("kiln-layerkeys-enc")
        defer { dir.remove() }
        _ = try Self.keys(in: dir)
        let yaml = """
            name: app
            version: "1"
            layers:
              - name: etc
                files: [{path: /etc/app.conf, content: "hello"}]
              - name: local
                add: [{src: app.conf, to: /etc/local.conf}]
            """
        try dir.write("recipes/app.conf", "local\n")
        let file = try dir.write("recipes/app.yaml", yaml)
        let (recipes, problems) = RecipeSet.parse(yaml, file: file)
        try #require(problems.isEmpty, "\(problems)")
        let plan = try Pipeline.plan(
            recipes, lock: LockFile(), lockPath: dir.path + "/recipes/kiln.lock",
            options: BuildOptions(sourceDateEpoch: 0))
        let layers = plan.images[0].platforms[0].layers
        // A local file is hashed by prepare, not by the plan: no plan key yet.
        #expect(layers[1].key == nil)
        // Prepare folds it in: hashed when a registry cache needs the key first, else only once this store
        // knows it (a first build reads it once, while writing). Its content changes the key.
        let layout = try OCILayout(root: dir.path + "/images")
        func localKey(hashUnknown: Bool) -> String? {
            var keyed = plan
            let digests = FileDigests(layout: layout)
            keyed.keyLocalFiles(digests, hashUnknown: hashUnknown)
            digests.save()
            return keyed.images[0].platforms[0].layers[1].key
        }
        #expect(localKey(hashUnknown: false) == nil)
        let local = try #require(localKey(hashUnknown: true))
        #expect(localKey(hashUnknown: false) == local, "known to the store by now")
        try dir.write("recipes/app.conf", "changed\n")
        #expect(localKey(hashUnknown: false).map { $0 != local } == true)
        let key = try #require(layers[0].key)
        func planKey(encoding: Int) -> String? {
            LayerKeys.planKey(
                layers[0].contents, platform: plan.images[0].platforms[0].platform, compression: .gzip, mtime: 0,
                allowForeignBinaries: false, pins: [:], builds: [:], encoding: encoding)?.encoded
        }
        #expect(planKey(encoding: Encoding.version) == key)
        #expect(planKey(encoding: Encoding.version + 1) != key)
        // A package set the lock does not pin yet has no plan key: prepare resolves it first.
        var unlocked = Variant()
        unlocked.locked = false
        let keys = try Self.keys(unlocked, in: dir)
        #expect(keys[1] == nil && keys[0] != nil, "\(keys)")
    }

    /// A plan key and the content key of the same entries are different keys: the two share the layer cache and
    /// a registry's `kiln-layer-` tags without colliding.
    @Test func planAndContentKeysOfOneLayerDiffer() async throws {
        let dir = try TemporaryDirectory("kiln-layerkeys-ns")
        defer { dir.remove() }
        let yaml = """
            name: app
            version: "1"
            layers:
              - name: etc
                files: [{path: /etc/app.conf, content: "hello"}]
            """
        let file = try dir.write("recipes/app.yaml", yaml)
        let (recipes, problems) = RecipeSet.parse(yaml, file: file)
        try #require(problems.isEmpty, "\(problems)")
        let plan = try Pipeline.plan(
            recipes, lock: LockFile(), lockPath: dir.path + "/recipes/kiln.lock",
            options: BuildOptions(sourceDateEpoch: 0))
        let store = dir.path + "/images"
        let builder = try Builder(
            layout: try OCILayout(root: store), prepared: try await Pipeline.prepare(plan, store: store))
        let layer = plan.images[0].platforms[0].layers[0]
        var unpacked: Builder.Unpacked = [:]
        let (entries, _) = try builder.entries(layer, platform: recipes[0].platforms[0], unpacked: &unpacked)
        let content = try builder.cacheKey(entries, compression: .gzip)
        #expect(layer.key != nil && layer.key != content.encoded)
    }
}
