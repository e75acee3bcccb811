import Foundation
import KilnLayer

/// The few results of maintainer scripts that a runtime image needs, made without running any script.
/// Kiln never runs preinst/postinst (they would need a shell, dpkg and root inside the image, and their output
/// is not reproducible). Everything else those scripts do (alternatives, debconf, ldconfig, users) is left
/// undone: see README "Debian package sets".
public enum PostInstall {
    public static let certificateBundle = "/etc/ssl/certs/ca-certificates.crt"

    /// For `ca-certificates`: the bundle `update-ca-certificates` would write, all certificates shipped under
    /// /usr/share/ca-certificates concatenated in bytewise path order (Debian's default enables them all).
    public static func entries(_ packages: [UnpackedPackage]) throws -> [LayerEntry] {
        guard let certificates = packages.first(where: { $0.control["Package"] == "ca-certificates" }) else {
            return []
        }
        var files: [(path: String, source: String)] = []
        for entry in certificates.entries where entry.path.hasPrefix("/usr/share/ca-certificates/") {
            if case .file(.path(let source)) = entry.kind, entry.path.hasSuffix(".crt") {
                files.append((entry.path, source))
            }
        }
        files.sort { LayerPath.precedes($0.path, $1.path) }
        var bundle = Data()
        for file in files {
            guard var pem = FileManager.default.contents(atPath: file.source) else {
                throw DebianError.badPackage(path: file.source, detail: "unreadable certificate")
            }
            if pem.last != 0x0A { pem.append(0x0A) }
            bundle.append(pem)
        }
        guard !bundle.isEmpty else { return [] }
        return [
            LayerEntry(path: "/etc/ssl/certs", kind: .directory, mode: 0o755),
            LayerEntry(path: certificateBundle, kind: .file(.bytes(bundle)), mode: 0o644),
        ]
    }
}
