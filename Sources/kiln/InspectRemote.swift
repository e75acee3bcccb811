import ArgumentParser
import Foundation
import KilnOCI
import KilnRegistry

extension Inspect {
    /// A reference naming a registry: its first component has a `.` or a `:` or is `localhost`
    /// (`registry.example.com/x:1`, `127.0.0.1:5000/x:1`), as docker and crane read it.
    static func isRemote(_ text: String) -> Bool {
        guard let slash = text.firstIndex(of: "/") else { return false }
        let first = text[..<slash]
        return first.contains(".") || first.contains(":") || first == "localhost"
    }

    /// The image as the registry serves it: the manifest (or each platform's of an index), its config and
    /// layers, every document checked against its digest. Nothing is stored.
    func remoteReport() async throws -> Report {
        let wanted = platform.compactMap(Platform.init(parsing:))
        return try await registryFlags.with(reference) { ref, client in
            let root = try await client.manifest(ref.repository, ref.identifier)
            var manifests: [Descriptor] = [root.descriptor]
            if MediaType.indexTypes.contains(root.descriptor.mediaType) {
                let index = try JSONDecoder().decode(ImageIndex.self, from: root.data)
                manifests = index.manifests.filter { descriptor in
                    guard let platform = descriptor.platform, platform.os != "unknown" else { return false }
                    return wanted.isEmpty || wanted.contains(platform)
                }
                guard !manifests.isEmpty else {
                    let offered = index.manifests.compactMap(\.platform).map(\.description)
                    throw CommandFailure(
                        "\(ref) has no \(wanted.map(\.description).joined(separator: ", ")) image (it has: "
                            + offered.joined(separator: ", ") + ")")
                }
            }
            var images: [PlatformImage] = []
            for descriptor in manifests {
                let data =
                    descriptor.digest == root.descriptor.digest
                    ? root.data : try await client.manifest(ref.repository, descriptor.digest.description).data
                let manifest = try JSONDecoder().decode(Manifest.self, from: data)
                let config = try JSONDecoder().decode(
                    ImageConfig.self, from: try await client.blob(ref.repository, manifest.config.digest))
                let history = (config.history ?? []).filter { $0.emptyLayer != true }
                let layers = manifest.layers.enumerated().map { i, layer in
                    Layer(
                        digest: layer.digest.description,
                        diffID: i < config.rootfs.diffIDs.count ? config.rootfs.diffIDs[i].description : "",
                        mediaType: layer.mediaType, size: layer.size,
                        createdBy: i < history.count ? history[i].createdBy : nil)
                }
                images.append(
                    PlatformImage(
                        platform: config.platform.description, manifestDigest: descriptor.digest.description,
                        manifest: manifest, config: config, layers: layers, packages: nil))
            }
            if !wanted.isEmpty, !MediaType.indexTypes.contains(root.descriptor.mediaType),
                let only = images.first, !wanted.contains(only.config.platform)
            {
                throw CommandFailure(
                    "\(ref) is a single \(only.platform) image, not \(platform.joined(separator: ", "))")
            }
            return Report(
                reference: ref.description, digest: root.descriptor.digest.description,
                mediaType: root.descriptor.mediaType, images: images)
        }
    }
}
