import Foundation
import KilnOCI

/// Independent tools that check Kiln's output: umoci (strict layout and layer checks), skopeo, podman.
public enum Oracles {
    /// `umoci unpack` of `layout:ref` into a bundle; returns the bundle's rootfs path.
    public static func umociUnpack(layout: String, reference: String, into bundle: String) throws -> String {
        try Shell.run(["umoci", "unpack", "--rootless", "--image", "\(layout):\(reference)", bundle])
        return bundle + "/rootfs"
    }

    /// `skopeo inspect --raw` / `skopeo inspect` of an OCI layout reference, as parsed JSON.
    public static func skopeoInspect(layout: String, reference: String, raw: Bool = false) throws -> [String: Any] {
        var args = ["skopeo", "inspect"]
        if raw { args.append("--raw") }
        args.append("oci:\(layout):\(reference)")
        let out = try Shell.run(args).stdout
        return try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] ?? [:]
    }
}

/// Rootful podman with runc and private config files (see shared/reference/tools.md): no change to /etc.
public struct Podman: Sendable {
    public let directory: TemporaryDirectory
    public var environment: [String: String] {
        [
            "CONTAINERS_CONF": directory.path + "/containers.conf",
            "CONTAINERS_STORAGE_CONF": directory.path + "/storage.conf",
        ]
    }

    public init() throws {
        directory = try TemporaryDirectory("kiln-podman")
        try directory.write(
            "containers.conf",
            """
            [containers]
            default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
            netns = "none"
            [engine]
            cgroup_manager = "cgroupfs"
            events_logger = "file"
            runtime = "runc"
            # Per instance: tests run podman in parallel, and a shared /run/libpod lets one instance's
            # `system reset` delete another's runtime status file ("open /run/libpod/alive").
            tmp_dir = "\(directory.path)/libpod-tmp"
            """)
        try directory.write(
            "storage.conf",
            """
            [storage]
            driver = "vfs"
            runroot = "\(directory.path)/runroot"
            graphroot = "\(directory.path)/root"
            """)
    }

    /// `podman run --rm IMAGE ARGS…`; `image` is e.g. `oci:/path/to/layout:name:tag`.
    public func run(_ image: String, _ arguments: [String] = [], extra: [String] = [], check: Bool = true) throws
        -> CommandResult
    {
        try Shell.run(
            ["podman", "run", "--rm", "--network=none"] + extra + [image] + arguments, environment: environment,
            check: check)
    }

    public func podman(_ arguments: [String], check: Bool = true) throws -> CommandResult {
        try Shell.run(["podman"] + arguments, environment: environment, check: check)
    }

    /// Removes this instance's containers, images and volumes (vfs layers are owned by root and large), then
    /// its directory. Not `podman system reset`: that also deletes every podman network on the host, including
    /// those of a concurrent test's compose project.
    public func cleanUp() {
        _ = try? podman(["rm", "--all", "--force", "--time", "0"], check: false)
        _ = try? podman(["rmi", "--all", "--force"], check: false)
        _ = try? podman(["volume", "rm", "--all", "--force"], check: false)
        directory.remove()
    }
}

extension Oracles {
    /// The digest a registry serves for `docker://REFERENCE` (sha256 of `skopeo inspect --raw`), nil when absent.
    public static func remoteDigest(_ reference: String) throws -> String? {
        let result = try Shell.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", "docker://\(reference)"], check: false)
        guard result.succeeded else { return nil }
        return Digest.sha256(Data(result.stdout.utf8)).description
    }
}
