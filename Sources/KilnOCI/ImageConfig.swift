import Foundation

/// The OCI image configuration (`application/vnd.oci.image.config.v1+json`).
public struct ImageConfig: Hashable, Sendable, Codable {
    public var created: String?
    public var author: String?
    public var architecture: String
    public var os: String
    public var variant: String?
    public var config: ExecutionConfig?
    public var rootfs: RootFS
    public var history: [History]?

    public init(
        platform: Platform, created: String? = nil, config: ExecutionConfig? = nil, rootfs: RootFS = RootFS(),
        history: [History]? = nil
    ) {
        self.architecture = platform.architecture
        self.os = platform.os
        self.variant = platform.variant
        self.created = created
        self.config = config
        self.rootfs = rootfs
        self.history = history
    }

    public var platform: Platform { Platform(os: os, architecture: architecture, variant: variant) }

    /// Execution defaults: what a runtime uses when it starts a container.
    public struct ExecutionConfig: Hashable, Sendable, Codable {
        public var user: String?
        public var exposedPorts: [String: EmptyObject]?
        public var env: [String]?
        public var entrypoint: [String]?
        public var cmd: [String]?
        public var volumes: [String: EmptyObject]?
        public var workingDir: String?
        public var labels: [String: String]?
        public var stopSignal: String?

        public init() {}

        enum CodingKeys: String, CodingKey {
            case user = "User"
            case exposedPorts = "ExposedPorts"
            case env = "Env"
            case entrypoint = "Entrypoint"
            case cmd = "Cmd"
            case volumes = "Volumes"
            case workingDir = "WorkingDir"
            case labels = "Labels"
            case stopSignal = "StopSignal"
        }
    }

    public struct RootFS: Hashable, Sendable, Codable {
        public var type = "layers"
        public var diffIDs: [Digest]

        public init(diffIDs: [Digest] = []) { self.diffIDs = diffIDs }

        enum CodingKeys: String, CodingKey {
            case type
            case diffIDs = "diff_ids"
        }
    }

    public struct History: Hashable, Sendable, Codable {
        public var created: String?
        public var createdBy: String?
        public var comment: String?
        public var emptyLayer: Bool?

        public init(created: String? = nil, createdBy: String? = nil, comment: String? = nil, emptyLayer: Bool? = nil) {
            self.created = created
            self.createdBy = createdBy
            self.comment = comment
            self.emptyLayer = emptyLayer
        }

        enum CodingKeys: String, CodingKey {
            case created, comment
            case createdBy = "created_by"
            case emptyLayer = "empty_layer"
        }
    }
}

/// RFC 3339 timestamps in UTC with second precision, as used in configs and annotations.
public enum Timestamp {
    public static func rfc3339(epochSeconds: Int64) -> String {
        var t = time_t(epochSeconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    /// The build timestamp: SOURCE_DATE_EPOCH when set and valid, else 0 (the Unix epoch).
    public static func sourceDateEpoch(environment: [String: String] = ProcessInfo.processInfo.environment) -> Int64 {
        guard let raw = environment["SOURCE_DATE_EPOCH"], let value = Int64(raw), value >= 0 else { return 0 }
        return value
    }
}
