import Foundation
import KilnOCI
import KilnStore

/// What changed between two releases: which images, and in each changed image which layers.
public struct ReleaseDiff: Codable, Sendable {
    public enum Status: String, Codable, Sendable {
        case added, removed, changed, unchanged
    }

    public struct LayerChange: Codable, Sendable, Equatable {
        public var platform: String
        /// Position in the manifest's layer list (0 = bottom).
        public var index: Int
        /// The recipe step that made the layer (history `created_by`), from the newer side when it has it.
        public var createdBy: String?
        /// nil when the layer exists only on the other side.
        public var from: Digest?
        public var to: Digest?
    }

    public struct ImageChange: Codable, Sendable {
        public var name: String
        public var status: Status
        public var from: Digest?
        public var to: Digest?
        public var layers: [LayerChange]
        /// True when only the config (settings, not files) differs for some platform.
        public var configChanged: Bool
    }

    public var from: String
    public var to: String
    public var images: [ImageChange]

    /// Compares release `a` with release `b`, reading each image's manifests and configs from the source
    /// `source` gives for its repository.
    public static func compare(
        _ a: ReleaseDocument, _ b: ReleaseDocument, source: (_ repository: String) -> any BlobSource
    ) async throws -> ReleaseDiff {
        let old = Dictionary(a.images.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let new = Dictionary(b.images.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var changes: [ImageChange] = []
        for name in Set(old.keys).union(new.keys).sorted() {
            switch (old[name], new[name]) {
            case (let x?, nil):
                changes.append(
                    .init(name: name, status: .removed, from: x.digest, to: nil, layers: [], configChanged: false))
            case (nil, let y?):
                changes.append(
                    .init(name: name, status: .added, from: nil, to: y.digest, layers: [], configChanged: false))
            case (let x?, let y?) where x.digest == y.digest:
                changes.append(
                    .init(
                        name: name, status: .unchanged, from: x.digest, to: y.digest, layers: [], configChanged: false))
            case (let x?, let y?):
                let before = try await source(x.repository).images(
                    under: Descriptor(mediaType: x.mediaType, digest: x.digest, size: 0))
                let after = try await source(y.repository).images(
                    under: Descriptor(mediaType: y.mediaType, digest: y.digest, size: 0))
                var layers: [LayerChange] = []
                var configChanged = false
                for image in after {
                    let platform = image.config.platform
                    let previous = before.first { $0.config.platform == platform }
                    let oldLayers = previous?.manifest.layers ?? []
                    let newLayers = image.manifest.layers
                    if previous?.manifest.config.digest != image.manifest.config.digest { configChanged = true }
                    for i in 0..<max(oldLayers.count, newLayers.count) {
                        let from = i < oldLayers.count ? oldLayers[i].digest : nil
                        let to = i < newLayers.count ? newLayers[i].digest : nil
                        guard from != to else { continue }
                        layers.append(
                            .init(
                                platform: platform.description, index: i,
                                createdBy: image.createdBy(layer: i) ?? previous?.createdBy(layer: i), from: from,
                                to: to))
                    }
                }
                for image in before where !after.contains(where: { $0.config.platform == image.config.platform }) {
                    for (i, layer) in image.manifest.layers.enumerated() {
                        layers.append(
                            .init(
                                platform: image.config.platform.description, index: i,
                                createdBy: image.createdBy(layer: i), from: layer.digest, to: nil))
                    }
                }
                changes.append(
                    .init(
                        name: name, status: .changed, from: x.digest, to: y.digest, layers: layers,
                        configChanged: configChanged))
            default: break
            }
        }
        return ReleaseDiff(from: a.version, to: b.version, images: changes)
    }

    /// Text for people: one line per image, indented lines per changed layer.
    public var text: String {
        var lines: [String] = []
        for image in images {
            switch image.status {
            case .unchanged: lines.append("  \(image.name): unchanged \(image.to?.description ?? "")")
            case .added: lines.append("+ \(image.name): added \(image.to?.description ?? "")")
            case .removed: lines.append("- \(image.name): removed (was \(image.from?.description ?? ""))")
            case .changed:
                lines.append(
                    "~ \(image.name): \(image.from?.description ?? "") → \(image.to?.description ?? "")")
                for layer in image.layers {
                    lines.append(
                        "    layer \(layer.index) [\(layer.platform)] \(layer.createdBy ?? ""): "
                            + "\(layer.from?.description ?? "(none)") → \(layer.to?.description ?? "(none)")")
                }
                if image.layers.isEmpty {
                    lines.append(
                        image.configChanged
                            ? "    same layers; the image config (settings) changed"
                            : "    same layers and config; only the manifest (annotations such as the version) changed")
                }
            }
        }
        return lines.joined(separator: "\n")
    }
}
