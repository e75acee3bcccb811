import Foundation

/// An OCI image manifest.
public struct Manifest: Hashable, Sendable, Codable {
    public var schemaVersion: Int = 2
    public var mediaType: String? = MediaType.imageManifest
    public var artifactType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(
        config: Descriptor, layers: [Descriptor], annotations: [String: String]? = nil,
        artifactType: String? = nil, subject: Descriptor? = nil
    ) {
        self.config = config
        self.layers = layers
        self.annotations = annotations
        self.artifactType = artifactType
        self.subject = subject
    }
}

/// An OCI image index: a list of manifests (platforms, or the tags of a layout's index.json).
public struct ImageIndex: Hashable, Sendable, Codable {
    public var schemaVersion: Int = 2
    public var mediaType: String? = MediaType.imageIndex
    public var artifactType: String?
    public var manifests: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(manifests: [Descriptor], annotations: [String: String]? = nil) {
        self.manifests = manifests
        self.annotations = annotations
    }
}

/// The `oci-layout` file.
public struct LayoutHeader: Codable, Sendable {
    public var imageLayoutVersion = "1.0.0"
    public init() {}
}
