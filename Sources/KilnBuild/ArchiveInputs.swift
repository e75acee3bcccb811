import Foundation
import KilnDebian
import KilnLayer
import KilnOCI
import KilnRecipe

#if canImport(Glibc)
    import Glibc
#endif

/// Archives given as inputs (`extract:`): each is unpacked once into `<cache>/extracted/<sha256>/`, a directory
/// that is complete or absent (built under a temporary name, then renamed), so later builds pick members from
/// files whose digests are already known to the stat cache instead of reading the archive again.
enum ArchiveInputs {
    struct Listing: Codable {
        var members: [ArchiveMember]
    }

    struct Unpacked {
        /// Files live at `root/tree/<member path>`.
        var root: String
        var members: [ArchiveMember]

        func file(_ member: ArchiveMember) -> String { root + "/tree/" + member.path }
    }

    static func unpack(_ digest: Digest, cache: DownloadCache) throws -> Unpacked {
        let root = "\(cache.root)/extracted/\(digest.encoded)"
        if let data = FileManager.default.contents(atPath: root + "/members.json"),
            let listing = try? JSONDecoder().decode(Listing.self, from: data)
        {
            return Unpacked(root: root, members: listing.members)
        }
        let archive = cache.path(for: digest)
        let temp = "\(cache.root)/extracted/.tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: temp + "/tree", withIntermediateDirectories: true)
        do {
            let reader = try ArchiveReader(path: archive)
            var members: [ArchiveMember] = []
            var seen = Set<String>()
            while let member = try reader.next() {
                guard !member.path.isEmpty, seen.insert(member.path).inserted else { continue }
                members.append(member)
                guard member.kind == .file else { continue }
                let path = temp + "/tree/" + member.path
                try FileManager.default.createDirectory(
                    atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
                guard fd >= 0 else {
                    throw LayerError.archive(
                        path: member.path, reason: "cannot unpack: \(String(cString: strerror(errno)))")
                }
                defer { close(fd) }
                try reader.readContent { chunk in
                    var offset = 0
                    while offset < chunk.count {
                        let n = write(fd, chunk.baseAddress! + offset, chunk.count - offset)
                        guard n > 0 else {
                            throw LayerError.archive(path: member.path, reason: String(cString: strerror(errno)))
                        }
                        offset += n
                    }
                }
                fsync(fd)
            }
            for member in members where member.kind == .hardlink {
                guard let target = member.target, members.contains(where: { $0.path == target && $0.kind == .file })
                else {
                    throw LayerError.archive(
                        path: member.path, reason: "hard link to '\(member.target ?? "")', which the archive lacks")
                }
            }
            try JSONEncoder().encode(Listing(members: members)).write(to: URL(fileURLWithPath: temp + "/members.json"))
            if rename(temp, root) != 0 {
                // Another build unpacked it first: theirs is complete, use it.
                try? FileManager.default.removeItem(atPath: temp)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: temp)
            throw error
        }
        return try unpack(digest, cache: cache)
    }

    /// The layer entries for `patterns` picked out of the archive and placed at `destination`.
    /// A pattern with a `/` matches whole member paths, one without matches file names; globs allowed.
    /// Every pattern must match something, else the error lists what the archive holds.
    static func entries(
        _ unpacked: Unpacked, patterns: [String], destination: String, ownership: Ownership, archiveURL: String,
        location: SourceLocation
    ) throws -> [LayerEntry] {
        let candidates = unpacked.members.filter { $0.kind != .directory }
        var picked: [ArchiveMember] = []
        var problems: [Diagnostic] = []
        for pattern in patterns {
            let matches = candidates.filter { member in
                let subject = pattern.contains("/") ? member.path : (member.path as NSString).lastPathComponent
                return fnmatch(pattern, subject, 0) == 0
            }
            if matches.isEmpty {
                let listing = candidates.prefix(12).map(\.path).joined(separator: ", ")
                problems.append(
                    Diagnostic(
                        location, "archive \(archiveURL) has no member matching '\(pattern)'",
                        hint: "it holds: \(listing)\(candidates.count > 12 ? ", …" : "")"))
            }
            for match in matches where !picked.contains(match) { picked.append(match) }
        }
        if !problems.isEmpty { throw RecipeError(problems) }
        let intoDirectory = destination.hasSuffix("/") || picked.count > 1
        var names = Set<String>()
        var entries: [LayerEntry] = []
        for member in picked {
            let name = (member.path as NSString).lastPathComponent
            guard names.insert(name).inserted else {
                throw RecipeError([
                    Diagnostic(
                        location, "two members of \(archiveURL) are both named '\(name)'",
                        hint: "pick one with a pattern that includes its directory, e.g. '*/bin/\(name)'")
                ])
            }
            let path = intoDirectory ? LocalSources.join(destination, name) : destination
            switch member.kind {
            case .symlink:
                entries.append(LayerEntry(path: path, kind: .symlink(target: member.target ?? ""), mode: 0o777))
            case .file, .hardlink:
                let source =
                    member.kind == .file ? member : ArchiveMember(path: member.target!, kind: .file, mode: 0, size: 0)
                entries.append(
                    LayerEntry(
                        path: path, kind: .file(.path(unpacked.file(source))), mode: ownership.mode ?? member.mode,
                        uid: ownership.uid, gid: ownership.gid))
            case .directory:
                break
            }
        }
        return entries
    }
}
