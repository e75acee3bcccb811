import Foundation
import KilnOCI
import KilnStore

/// Turns layers and settings into an image config and manifest in the store. One place decides how a
/// recipe's settings combine with its base's, so every image follows the same rules.
public struct ImageAssembly: Sendable {
    public var platform: Platform
    /// RFC 3339; the same fixed value everywhere (SOURCE_DATE_EPOCH, else the epoch).
    public var created: String
    public var base: StoredImage?
    public var layers: [(layer: CachedLayer, createdBy: String)]
    /// What the recipe sets; merged over the base's settings by `merge`.
    public var settings: ImageConfig.ExecutionConfig
    public var annotations: [String: String]
    /// Inherited settings to drop before merging (`reset: [ports]` in a recipe).
    public var reset: Set<String>

    public init(
        platform: Platform, created: String, base: StoredImage?, layers: [(layer: CachedLayer, createdBy: String)],
        settings: ImageConfig.ExecutionConfig, annotations: [String: String], reset: Set<String> = []
    ) {
        self.reset = reset
        self.platform = platform
        self.created = created
        self.base = base
        self.layers = layers
        self.settings = settings
        self.annotations = annotations
    }

    /// Docker's inheritance rules: lists and maps accumulate, scalars override, and a new entrypoint drops an
    /// inherited cmd (the base's arguments rarely fit another program).
    /// `reset` names inherited settings that start empty instead (an assetchain listens on its own ports, not on
    /// komodod's).
    public static func merge(
        base: ImageConfig.ExecutionConfig?, overlay: ImageConfig.ExecutionConfig, reset: Set<String> = []
    ) -> ImageConfig.ExecutionConfig {
        var result = base ?? ImageConfig.ExecutionConfig()
        if reset.contains("ports") { result.exposedPorts = nil }
        if reset.contains("volumes") { result.volumes = nil }
        if reset.contains("labels") { result.labels = nil }
        if reset.contains("env") { result.env = nil }
        if let env = overlay.env {
            var merged = result.env ?? []
            for entry in env {
                let key = entry.split(separator: "=", maxSplits: 1).first.map(String.init) ?? entry
                merged.removeAll { $0 == key || $0.hasPrefix(key + "=") }
                merged.append(entry)
            }
            result.env = merged
        }
        if let entrypoint = overlay.entrypoint {
            result.entrypoint = entrypoint
            result.cmd = overlay.cmd
        } else if let cmd = overlay.cmd {
            result.cmd = cmd
        }
        result.user = overlay.user ?? result.user
        result.workingDir = overlay.workingDir ?? result.workingDir
        result.stopSignal = overlay.stopSignal ?? result.stopSignal
        if let ports = overlay.exposedPorts { result.exposedPorts = (result.exposedPorts ?? [:]).merging(ports) { $1 } }
        if let volumes = overlay.volumes { result.volumes = (result.volumes ?? [:]).merging(volumes) { $1 } }
        if let labels = overlay.labels { result.labels = (result.labels ?? [:]).merging(labels) { $1 } }
        return result
    }

    /// The image config this assembly describes.
    public func config() -> ImageConfig {
        var diffIDs = base?.config.rootfs.diffIDs ?? []
        var history = base?.config.history ?? []
        // Keep one non-empty history entry per base layer: some published images carry no history.
        let baseLayerCount = base?.manifest.layers.count ?? 0
        let nonEmpty = history.filter { $0.emptyLayer != true }.count
        if nonEmpty < baseLayerCount {
            history += Array(
                repeating: ImageConfig.History(created: created, createdBy: "base layer"),
                count: baseLayerCount - nonEmpty)
        }
        for (layer, createdBy) in layers {
            diffIDs.append(layer.diffID)
            history.append(ImageConfig.History(created: created, createdBy: createdBy, comment: "kiln"))
        }
        let merged = Self.merge(base: base?.config.config, overlay: settings, reset: reset)
        return ImageConfig(
            platform: platform, created: created, config: merged, rootfs: .init(diffIDs: diffIDs), history: history)
    }

    /// Writes config and manifest blobs; returns the manifest's descriptor (with platform). `protect` is given
    /// each digest before its blob is written (a build's roots, see `BuildRoots`).
    public func write(to layout: OCILayout, protect: ([Digest]) throws -> Void = { _ in }) throws -> Descriptor {
        let configBytes = try CanonicalJSON.encode(config())
        let configDescriptor = Descriptor(mediaType: MediaType.imageConfig, bytes: configBytes)
        try protect([configDescriptor.digest])
        try layout.writeBlob(configBytes)
        let manifest = Manifest(
            config: configDescriptor, layers: (base?.manifest.layers ?? []) + layers.map(\.layer.descriptor),
            annotations: annotations.isEmpty ? nil : annotations)
        let manifestBytes = try CanonicalJSON.encode(manifest)
        var descriptor = Descriptor(mediaType: MediaType.imageManifest, bytes: manifestBytes)
        try protect([descriptor.digest])
        try layout.writeBlob(manifestBytes)
        descriptor.platform = platform
        return descriptor
    }

    /// For several platforms: an image index over their manifests, in the order given.
    public static func writeIndex(
        _ manifests: [Descriptor], annotations: [String: String], to layout: OCILayout,
        protect: ([Digest]) throws -> Void = { _ in }
    ) throws -> Descriptor {
        let bytes = try CanonicalJSON.encode(
            ImageIndex(manifests: manifests, annotations: annotations.isEmpty ? nil : annotations))
        let descriptor = Descriptor(mediaType: MediaType.imageIndex, bytes: bytes)
        try protect([descriptor.digest])
        try layout.writeBlob(bytes)
        return descriptor
    }
}
