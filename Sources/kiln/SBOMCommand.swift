import ArgumentParser
import Foundation
import KilnDebian
import KilnOCI
import KilnRegistry
import KilnRelease
import KilnStore

struct SBOMCommand: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        commandName: "sbom",
        abstract: "Print an image's SPDX SBOM, from a registry or the store.",
        discussion: """
            REF is REGISTRY/NAME:TAG (or …@sha256:…): the SBOM artifact whose subject is the image's manifest is \
            found through the registry's referrers API, else the fallback tag sha256-<hex> (as push publishes \
            it). NAME:TAG reads the store. A multi-platform image has one SBOM per platform: --platform picks \
            it (default: this machine's, else the first). Prints one SPDX 2.3 JSON document.

              kiln sbom registry.example.com/komodo/komodod:0.9.2 --platform linux/amd64 > komodod.spdx.json
            """)

    @Argument(help: "REGISTRY/NAME:TAG, or NAME:TAG in the store.") var reference: String
    @Option(name: .long, help: "The platform of a multi-platform image, e.g. linux/arm64.") var platform: String?
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registryFlags: RegistryFlags

    /// A registry reference names a host first (with a dot or a port, or localhost), as docker reads them.
    static func isRemote(_ text: String) -> Bool {
        guard let slash = text.firstIndex(of: "/") else { return false }
        let host = text[..<slash]
        return host.contains(".") || host.contains(":") || host == "localhost"
    }

    func chosen(_ platforms: [Platform]) throws -> Int {
        if let platform {
            guard let wanted = Platform(parsing: platform) else {
                throw ValidationError("'\(platform)' is not a platform: write os/arch")
            }
            guard let i = platforms.firstIndex(of: wanted) else {
                throw ValidationError(
                    "\(reference) has no \(platform) image; it has \(platforms.map(\.description).joined(separator: ", "))"
                )
            }
            return i
        }
        return platforms.firstIndex(of: Platform.host) ?? 0
    }

    func run() async throws {
        let document: Data
        if Self.isRemote(reference) {
            document = try await registryFlags.with(reference) { ref, client in
                let source = RegistryRepository(client: client, repository: ref.repository)
                let (_, top) = try await source.resolve(ref.identifier)
                let images = try await source.images(under: top)
                guard !images.isEmpty else { throw NoSBOM(reference: reference, store: client.registry) }
                let image = images[try chosen(images.map(\.config.platform))]
                let found = try await Referrers.list(
                    image.manifestDescriptor.digest, in: source, artifactType: SBOM.mediaType)
                guard let artifact = found.first else { throw NoSBOM(reference: reference, store: client.registry) }
                let (data, _) = try await client.manifest(ref.repository, artifact.digest.description)
                let manifest = try JSONDecoder().decode(Manifest.self, from: data)
                guard let layer = manifest.layers.first(where: { $0.mediaType == SBOM.mediaType }) else {
                    throw NoSBOM(reference: reference, store: client.registry)
                }
                return try await source.contents(layer)
            }
        } else {
            let layout = try OCILayout(root: storeOptions.path, create: false)
            let images = try layout.images(for: try layout.resolve(reference))
            guard !images.isEmpty else { throw NoSBOM(reference: reference, store: layout.root) }
            let image = images[try chosen(images.map(\.config.platform))]
            guard
                let artifact = try layout.referrers(of: image.manifestDescriptor.digest).first(where: {
                    $0.artifactType == SBOM.mediaType
                }),
                let layer = try CanonicalJSON.decode(Manifest.self, from: layout.readBlob(artifact.digest)).layers
                    .first(where: { $0.mediaType == SBOM.mediaType })
            else { throw NoSBOM(reference: reference, store: layout.root) }
            document = try layout.readBlob(layer.digest)
        }
        FileHandle.standardOutput.write(document)
        if document.last != UInt8(ascii: "\n") { FileHandle.standardOutput.write(Data("\n".utf8)) }
    }
}
