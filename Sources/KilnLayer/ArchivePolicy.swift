import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The checks `ArchiveReader` applies to one entry's name, type and link under a policy.
struct ArchiveEntryCheck {
    let policy: ArchivePolicy
    let archive: String

    func entry(
        name: String, type: UInt32, mode: UInt32, size: Int64, symlink: String?, hardlink: String?
    ) throws -> ArchiveEntry {
        if name.hasPrefix("/") && policy != .package { throw escape(name) }
        let path = try normalise(name)
        let permissions = mode & 0o7777
        if let hardlink, !hardlink.isEmpty {
            if hardlink.hasPrefix("/") && policy != .package { throw escape(name, target: hardlink) }
            do {
                return ArchiveEntry(path: path, kind: .hardlink, mode: permissions, linkTarget: try normalise(hardlink))
            } catch {
                throw escape(name, target: hardlink)
            }
        }
        switch type & UInt32(S_IFMT) {
        case UInt32(S_IFDIR):
            return ArchiveEntry(path: path, kind: .directory, mode: permissions)
        case UInt32(S_IFLNK):
            let target = symlink ?? ""
            let escapes: Bool
            switch policy {
            case .input: escapes = target.hasPrefix("/") || !LayerPath.staysInside(path: path, target: target)
            case .layer: escapes = !target.hasPrefix("/") && !LayerPath.staysInside(path: path, target: target)
            case .package: escapes = false
            }
            if target.isEmpty || escapes {
                throw LayerError.archive(
                    path: archive,
                    reason: "member '\(name)' is a symlink to '\(target)', outside the archive; refusing the archive")
            }
            return ArchiveEntry(path: path, kind: .symlink, mode: 0o777, linkTarget: target)
        case UInt32(S_IFREG), 0:
            return ArchiveEntry(path: path, kind: .file, size: size, mode: permissions)
        default:
            guard policy == .layer else {
                throw LayerError.archive(
                    path: archive,
                    reason: "member '\(name)' is a device, FIFO or socket, which an archive input may not contain")
            }
            return ArchiveEntry(path: path, kind: .other, mode: permissions)
        }
    }

    func escape(_ name: String, target: String? = nil) -> LayerError {
        .archive(
            path: archive,
            reason:
                "member '\(name)'\(target.map { " (a hard link to '\($0)')" } ?? "") leaves the image root; refusing the archive"
        )
    }

    /// `LayerPath.normalise` plus the size limits, with the archive and member named in the error.
    func normalise(_ name: String) throws -> String {
        let path: String
        do {
            path = try LayerPath.normalise(name, whiteouts: policy == .layer)
        } catch LayerError.pathEscapesRoot {
            throw escape(name)
        } catch {
            throw LayerError.archive(path: archive, reason: "member '\(name)': \(error)")
        }
        let parts = path.split(separator: "/")
        if path.utf8.count > ArchiveLimits.maxPathBytes || parts.count > ArchiveLimits.maxDepth
            || parts.contains(where: { $0.utf8.count > ArchiveLimits.maxComponentBytes })
        {
            throw LayerError.archive(
                path: archive,
                reason:
                    "member '\(name.count > 120 ? String(name.prefix(120)) + "…" : name)' has a path of \(path.utf8.count) bytes and \(parts.count) levels; the limits are \(ArchiveLimits.maxPathBytes) bytes, \(ArchiveLimits.maxDepth) levels and \(ArchiveLimits.maxComponentBytes) bytes a name"
            )
        }
        return path
    }
}
