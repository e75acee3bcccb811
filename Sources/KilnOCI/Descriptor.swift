import Foundation

/// An OCI platform (GOOS/GOARCH values).
public struct Platform: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public var architecture: String
    public var os: String
    public var variant: String?

    public init(os: String = "linux", architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    /// Parses `os/arch[/variant]`, e.g. `linux/amd64` or `linux/arm64/v8`.
    public init?(parsing s: String) {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        self.init(os: parts[0], architecture: parts[1], variant: parts.count == 3 ? parts[2] : nil)
    }

    public var description: String { [os, architecture, variant].compactMap { $0 }.joined(separator: "/") }

    public static func < (a: Platform, b: Platform) -> Bool { a.description < b.description }

    public static let linuxAMD64 = Platform(architecture: "amd64")

    /// The platform of the machine running Kiln.
    public static var host: Platform {
        #if arch(x86_64)
            return Platform(architecture: "amd64")
        #elseif arch(arm64)
            return Platform(architecture: "arm64", variant: "v8")
        #else
            return Platform(architecture: "unknown")
        #endif
    }

    enum CodingKeys: String, CodingKey { case architecture, os, variant }
}

/// A reference to content: media type, digest and size, with optional annotations and platform.
public struct Descriptor: Hashable, Sendable, Codable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var annotations: [String: String]?
    public var platform: Platform?
    public var artifactType: String?
    public var urls: [String]?
    public var data: String?

    public init(
        mediaType: String, digest: Digest, size: Int64, annotations: [String: String]? = nil,
        platform: Platform? = nil, artifactType: String? = nil
    ) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.annotations = annotations
        self.platform = platform
        self.artifactType = artifactType
    }

    /// The descriptor of `bytes` with the given media type.
    public init(mediaType: String, bytes: Data) {
        self.init(mediaType: mediaType, digest: .sha256(bytes), size: Int64(bytes.count))
    }
}
