import Foundation
import KilnBuild
import KilnHTTP
import KilnKomodo
import KilnLayer
import KilnOCI
import KilnRecipe
import KilnRegistry
import KilnStore

/// The outcome of `kiln verify`: does rebuilding the recipes give the published digest, and if not, where
/// the first difference is.
public struct VerifyReport: Codable, Sendable {
    public var reference: String
    /// The digest the registry serves for the reference, and the rebuilt image's.
    public var publishedDigest: Digest
    public var rebuiltDigest: Digest
    public var matches: Bool
    /// The first platform whose manifest differs.
    public var platform: String?
    /// Index (0 = bottom) and recipe step (history `created_by`) of the first differing layer.
    public var layerIndex: Int?
    public var layerName: String?
    public var publishedLayer: Digest?
    public var rebuiltLayer: Digest?
    /// The entries of that layer that differ (`+`/`-`/`~ /path: what`), sorted by path.
    public var files: [String]
    public var note: String?

    public var text: String {
        if matches { return "OK \(reference): rebuilt \(rebuiltDigest), identical to the published image" }
        var lines = ["MISMATCH \(reference): published \(publishedDigest), rebuilt \(rebuiltDigest)"]
        if let layerIndex {
            lines.append(
                "first differing layer: \(layerIndex) (\(layerName ?? "unnamed"))"
                    + (platform.map { " on \($0)" } ?? ""))
            lines.append("  published \(publishedLayer?.description ?? "(none)")")
            lines.append("  rebuilt   \(rebuiltLayer?.description ?? "(none)")")
        }
        if !files.isEmpty {
            lines.append("files that differ (rebuilt vs published):")
            lines += files.map { "  " + $0 }
        }
        if let note { lines.append(note) }
        return lines.joined(separator: "\n")
    }
}

/// Rebuilds an image from recipes in a private temporary store and compares it with what a registry serves.
/// The build inputs a published image records in its annotations (version, revision, created time) are reused,
/// so an honest rebuild gives the same bytes.
public struct Verifier: Sendable {
    public let client: RegistryClient
    public let registryOptions: RegistryOptions
    public let httpOptions: HTTPOptions
    public let events: @Sendable (BuildEvent) -> Void

    public init(
        client: RegistryClient, registryOptions: RegistryOptions, httpOptions: HTTPOptions,
        events: @escaping @Sendable (BuildEvent) -> Void = { _ in }
    ) {
        self.client = client
        self.registryOptions = registryOptions
        self.httpOptions = httpOptions
        self.events = events
    }

    public func verify(_ reference: Reference, recipes: [String], scratch: String) async throws -> VerifyReport {
        let repository = reference.repository
        let (data, descriptor) = try await client.manifest(repository, reference.identifier)
        let annotations = try JSONDecoder().decode(Annotated.self, from: data).annotations ?? [:]
        let name = String(repository.split(separator: "/").last ?? Substring(repository))
        let set = try RecipeSet.load(paths: recipes, derivations: [KomodoMatrix()])
        guard set.recipe(named: name) != nil else {
            throw ReleaseError.invalidArgument(
                "no recipe named '\(name)' (the repository's last component) in \(recipes.joined(separator: ", ")); "
                    + "known: \(set.recipes.map(\.name).joined(separator: ", ")). Pass --recipes with the recipes it was built from"
            )
        }
        let version = annotations[AnnotationKey.version] ?? reference.tag
        let epoch = annotations[AnnotationKey.created].flatMap(Self.epoch(rfc3339:)) ?? 0
        let layout = try OCILayout(root: scratch)
        // Remote inputs and Debian package sets exactly as the lock beside the recipes pins them.
        let lockPath = LockFile.path(besideRecipes: recipes)
        let options = BuildOptions(
            sourceDateEpoch: epoch, version: version, revision: annotations[AnnotationKey.revision],
            lockMode: FileManager.default.fileExists(atPath: lockPath) ? .verify : .update,
            inputs: InputOptions(http: httpOptions), registry: registryOptions)
        let plan = try Pipeline.plan(set, only: [name], lockPath: lockPath, options: options)
        // Build steps run again in the scratch store: verify rebuilds what was compiled, too.
        guard
            let built = try await Pipeline.run(plan, store: scratch, as: .verify, events: events).images.first(where: {
                $0.name == name
            })
        else {
            throw ReleaseError.unknownImage(name: name, known: plan.images.map(\.name))
        }
        var report = VerifyReport(
            reference: reference.description, publishedDigest: descriptor.digest, rebuiltDigest: built.digest,
            matches: built.digest == descriptor.digest, files: [])
        guard !report.matches else { return report }

        let remote = try await RegistryRepository(client: client, repository: repository).images(
            under: descriptor)
        let local = try await layout.images(
            under: Descriptor(mediaType: built.mediaType, digest: built.digest, size: 0))
        for mine in local {
            let platform = mine.config.platform
            guard let theirs = remote.first(where: { $0.config.platform == platform }) else {
                report.platform = platform.description
                report.note = "the published image has no \(platform) manifest"
                return report
            }
            guard mine.manifestDescriptor.digest != theirs.manifestDescriptor.digest else { continue }
            report.platform = platform.description
            let a = mine.manifest.layers
            let b = theirs.manifest.layers
            guard
                let i = (0..<max(a.count, b.count)).first(where: { i in
                    i >= a.count || i >= b.count || a[i].digest != b[i].digest
                })
            else {
                report.note =
                    "every layer is identical; the image config differs (rebuilt \(mine.manifest.config.digest), "
                    + "published \(theirs.manifest.config.digest)): check the recipe's settings, or the manifest annotations"
                return report
            }
            report.layerIndex = i
            report.layerName = mine.createdBy(layer: i) ?? theirs.createdBy(layer: i)
            report.rebuiltLayer = i < a.count ? a[i].digest : nil
            report.publishedLayer = i < b.count ? b[i].digest : nil
            var mineFiles: [LayerFile] = []
            if i < a.count {
                mineFiles = try LayerReader.files(at: layout.blobPath(a[i].digest), expected: a[i].digest)
            }
            var theirFiles: [LayerFile] = []
            if i < b.count {
                let path = scratch + "/.kiln/published-layer"
                defer { try? FileManager.default.removeItem(atPath: path) }
                try await client.downloadBlob(repository, b[i], to: path)
                theirFiles = try LayerReader.files(at: path)
            }
            report.files = LayerReader.compare(mineFiles, theirFiles)
            return report
        }
        report.note = "the platform manifests are identical; the image index differs (annotations or order)"
        return report
    }

    struct Annotated: Decodable { var annotations: [String: String]? }

    /// `2023-11-14T22:13:20Z` → seconds since the epoch.
    static func epoch(rfc3339 text: String) -> Int64? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text).map { Int64($0.timeIntervalSince1970) }
    }
}
