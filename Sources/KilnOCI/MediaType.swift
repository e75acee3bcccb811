/// OCI and Docker media types that Kiln reads or writes.
public enum MediaType {
    public static let layoutHeader = "application/vnd.oci.layout.header.v1+json"
    public static let imageIndex = "application/vnd.oci.image.index.v1+json"
    public static let imageManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let imageConfig = "application/vnd.oci.image.config.v1+json"
    public static let layerTar = "application/vnd.oci.image.layer.v1.tar"
    public static let layerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let layerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let empty = "application/vnd.oci.empty.v1+json"

    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"

    /// Media types of documents that list other manifests.
    public static let indexTypes: Set<String> = [imageIndex, dockerManifestList]
    /// Media types of single-platform manifests.
    public static let manifestTypes: Set<String> = [imageManifest, dockerManifest]
}

/// Well-known annotation keys.
public enum AnnotationKey {
    public static let refName = "org.opencontainers.image.ref.name"
    public static let created = "org.opencontainers.image.created"
    public static let version = "org.opencontainers.image.version"
    public static let revision = "org.opencontainers.image.revision"
    public static let source = "org.opencontainers.image.source"
    public static let title = "org.opencontainers.image.title"
    public static let description = "org.opencontainers.image.description"
    public static let baseName = "org.opencontainers.image.base.name"
    public static let baseDigest = "org.opencontainers.image.base.digest"
    /// The full image name (`NAME:TAG`), as containerd and docker write it beside `ref.name`.
    public static let containerdImageName = "io.containerd.image.name"
}
