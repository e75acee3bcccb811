import Foundation
import KilnLayer
import KilnStore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A .deb taken apart: its control stanza and its data as layer entries whose file contents live on disk.
public struct UnpackedPackage: Sendable {
    public var control: Stanza
    public var entries: [LayerEntry]
}

/// Reads .deb files through KilnLayer's `ArchiveReader` (the outer `ar`, then `control.tar.*` and `data.tar.*`)
/// into `<cache>/unpacked-v2/<sha256>/`: `root/` holds the regular files, `entries.json` every path with its
/// type, mode and owner as the archive gives them. Done once per .deb (by digest), staged and published whole
/// (KilnStore's `StagedDirectory`); maintainer scripts never run. (`unpacked-v2`: entries.json now holds
/// `ArchiveEntry` values; the first layout's directory is left alone.)
public enum DebUnpacker {
    struct Manifest: Codable {
        var control: String
        var entries: [ArchiveEntry]
    }

    /// Packages already read in this process, by unpacked directory (content-addressed, never changed). A
    /// build asks for each package once per layer and once more per image's SBOM (every Komodo image lists
    /// debian-runtime's set), and decoding entries.json each time was most of a no-op rebuild.
    private static let memo = Mutex<[String: UnpackedPackage]>([:])

    public static func unpack(deb: String, sha256: String, cache: DownloadCache) throws -> UnpackedPackage {
        let directory = cache.slot("unpacked-v2", sha256)
        if let known = memo.withLock({ $0[directory] }) { return known }
        let unpacked = try unpackOnce(deb: deb, directory: directory, cache: cache)
        memo.withLock { $0[directory] = unpacked }
        return unpacked
    }

    private static func unpackOnce(deb: String, directory: String, cache: DownloadCache) throws -> UnpackedPackage {
        if let data = FileManager.default.contents(atPath: directory + "/entries.json"),
            let manifest = try? JSONDecoder().decode(Manifest.self, from: data)
        {
            return package(manifest, root: directory + "/root")
        }
        let parent = (directory as NSString).deletingLastPathComponent
        StagedDirectory.removeStale(in: parent)
        let staged = try StagedDirectory(in: parent)
        let manifest: Manifest
        do {
            manifest = try extract(deb: deb, into: staged.path)
        } catch let error as LayerError {
            throw DebianError.badPackage(path: deb, detail: "\(error)")
        }
        try AtomicFile.write(try JSONEncoder().encode(manifest), to: staged.path + "/entries.json")
        try staged.publish(as: directory)
        return package(manifest, root: directory + "/root")
    }

    static func package(_ manifest: Manifest, root: String) -> UnpackedPackage {
        let entries = manifest.entries.map { entry -> LayerEntry in
            let kind: LayerEntry.Kind
            switch entry.kind {
            case .directory: kind = .directory
            case .symlink: kind = .symlink(target: entry.linkTarget ?? "")
            case .hardlink: kind = .hardlink(target: "/" + (entry.linkTarget ?? ""))
            case .file, .other: kind = .file(.path(root + "/" + entry.path))
            }
            return LayerEntry(
                path: "/" + entry.path, kind: kind, mode: entry.mode, uid: Int(entry.uid), gid: Int(entry.gid))
        }
        return UnpackedPackage(control: Control.parse(Data(manifest.control.utf8)).first ?? Stanza(), entries: entries)
    }

    /// The outer ar archive: `debian-binary` (format 2.x), `control.tar[.gz|.xz|.zst]`, `data.tar[.*]`. The
    /// data member is copied to a file first (it can be hundreds of megabytes), then unpacked into `root/`.
    static func extract(deb: String, into staging: String) throws -> Manifest {
        let outer = try ArchiveReader(path: deb, format: .ar, policy: .package)
        var control: String?
        var entries: [ArchiveEntry]?
        var format: String?
        while let member = try outer.next() {
            if member.path == "debian-binary" {
                format = String(decoding: try outer.readAll(limit: 1024), as: UTF8.self)
            } else if member.path.hasPrefix("control.tar") {
                control = try controlFile(try outer.readAll(), name: member.path, deb: deb)
            } else if member.path.hasPrefix("data.tar") {
                let temp = staging + "/" + member.path
                let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                guard fd >= 0 else {
                    throw DebianError.badPackage(path: temp, detail: String(cString: strerror(errno)))
                }
                defer { close(fd) }
                try outer.readContent { try AtomicFile.writeAll(fd, $0, path: temp) }
                let data = try ArchiveReader(path: temp, name: member.path, format: .tar, policy: .package)
                entries = try ArchiveExtractor.extract(data, into: staging + "/root")
                unlink(temp)
            }
        }
        guard let format, format.hasPrefix("2.") else {
            throw DebianError.badPackage(path: deb, detail: "not a Debian binary package (no debian-binary 2.x member)")
        }
        guard let control, let entries else {
            throw DebianError.badPackage(path: deb, detail: "the package has no control or data member")
        }
        return Manifest(control: control, entries: entries)
    }

    static func controlFile(_ data: Data, name: String, deb: String) throws -> String {
        let reader = try ArchiveReader(data: data, name: name, format: .tar, policy: .package)
        while let member = try reader.next() {
            if member.path == "control" && member.kind == .file {
                return String(decoding: try reader.readAll(), as: UTF8.self)
            }
        }
        throw DebianError.badPackage(path: deb, detail: "control.tar has no control file")
    }
}
