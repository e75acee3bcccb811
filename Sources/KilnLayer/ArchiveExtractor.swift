import Foundation
import KilnStore

#if canImport(Glibc)
    import Glibc
#endif

/// Unpacks regular files from an `ArchiveReader` into a directory the caller stages (see KilnStore's
/// `StagedDirectory`, which syncs it once and publishes it). Only files and directories are ever created there,
/// never through a symlink (`O_NOFOLLOW`, `O_EXCL`), so no member can redirect another; links, owners and modes
/// are returned as entries for the layer writer, not applied to disk.
public enum ArchiveExtractor {
    /// Every entry of `reader`, in archive order; the content of each regular file for which `wanted` is true
    /// is written to `root/<path>`. Other content is drained unread (so corrupt members still fail).
    public static func extract(
        _ reader: ArchiveReader, into root: String, wanted: (ArchiveEntry) -> Bool = { _ in true }
    ) throws -> [ArchiveEntry] {
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        } catch {
            throw LayerError.archive(path: reader.name, reason: "cannot create \(root): \(error)")
        }
        var entries: [ArchiveEntry] = []
        var directories: Set<String> = [""]
        while let entry = try reader.next() {
            if entry.path.isEmpty { continue }
            entries.append(entry)
            guard entry.kind == .file, wanted(entry) else { continue }
            try makeDirectories(parent(of: entry.path), under: root, known: &directories, archive: reader.name)
            let file = root + "/" + entry.path
            let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw LayerError.archive(
                    path: reader.name, reason: "cannot unpack '\(entry.path)': \(String(cString: strerror(errno)))")
            }
            defer { close(fd) }
            try reader.readContent { try AtomicFile.writeAll(fd, $0, path: file) }
        }
        return entries
    }

    /// `a/b/c` → `a/b`, `a` → "" (normalised paths only).
    static func parent(of path: String) -> String {
        path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ""
    }

    /// `mkdir` of each missing component (never following a link: only directories are made here).
    static func makeDirectories(_ path: String, under root: String, known: inout Set<String>, archive: String)
        throws
    {
        guard !known.contains(path) else { return }
        try makeDirectories(parent(of: path), under: root, known: &known, archive: archive)
        if mkdir(root + "/" + path, 0o755) != 0 && errno != EEXIST {
            throw LayerError.archive(
                path: archive, reason: "cannot create '\(path)': \(String(cString: strerror(errno)))")
        }
        known.insert(path)
    }
}
