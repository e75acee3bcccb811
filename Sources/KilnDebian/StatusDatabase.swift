import Foundation
import KilnLayer

/// The dpkg status database in the distroless form: one file per package under `/var/lib/dpkg/status.d/`,
/// holding the package's control stanza with `Status: install ok installed`. Scanners (trivy, grype, syft)
/// read it to know what is installed; dpkg itself is not in the image, so nothing else needs its database.
public enum StatusDatabase {
    public static let directory = "/var/lib/dpkg/status.d"

    /// The stanza as dpkg would record it: `Status` right after `Package`, every other field unchanged.
    public static func stanza(_ control: Stanza) -> String {
        var fields = control.fields.filter { $0.name.lowercased() != "status" }
        let at = (fields.firstIndex { $0.name.lowercased() == "package" }).map { $0 + 1 } ?? 0
        fields.insert(("Status", "install ok installed"), at: at)
        return Stanza(fields: fields).text
    }

    /// The layer entries for `packages`: the status.d directory and one file per package.
    public static func entries(_ packages: [UnpackedPackage]) -> [LayerEntry] {
        var entries = [LayerEntry(path: directory, kind: .directory, mode: 0o755)]
        for package in packages {
            guard let name = package.control["Package"] else { continue }
            entries.append(
                LayerEntry(
                    path: "\(directory)/\(name)", kind: .file(.bytes(Data(stanza(package.control).utf8))), mode: 0o644))
        }
        return entries
    }
}
