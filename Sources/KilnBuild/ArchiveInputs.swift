import Foundation
import KilnDebian
import KilnLayer
import KilnOCI
import KilnRecipe
import KilnStore

#if canImport(Glibc)
    import Glibc
#endif

/// Archives given as inputs (`extract:`). Each is read once per set of patterns into
/// `<cache>/extracted-v2/<sha256>-<patterns key>/`, a slot that is complete or absent (staged, synced once,
/// renamed: see KilnStore's `StagedDirectory`): `members.json` lists every member, `tree/` holds only the
/// files the patterns pick, so later builds take them from files whose digests the stat cache knows.
/// (`extracted-v2`: the listing's format changed from the first layout, which is left alone.)
enum ArchiveInputs {
    struct Listing: Codable {
        var members: [ArchiveEntry]
    }

    struct Unpacked {
        /// Files live at `root/tree/<member path>`.
        var root: String
        var members: [ArchiveEntry]

        func file(_ member: ArchiveEntry) -> String { root + "/tree/" + member.path }
    }

    /// `limit`: the recipe's `unpack-limit`, which replaces the default expansion limits.
    static func unpack(_ digest: Digest, patterns: [String], limit: Int64? = nil, cache: DownloadCache) throws
        -> Unpacked
    {
        let parent = cache.root + "/extracted-v2"
        let key = Digest.sha256(patterns.sorted().joined(separator: "\n")).encoded.prefix(16)
        let root = "\(parent)/\(digest.encoded)-\(key)"
        if let data = FileManager.default.contents(atPath: root + "/members.json"),
            let listing = try? JSONDecoder().decode(Listing.self, from: data)
        {
            return Unpacked(root: root, members: listing.members)
        }
        StagedDirectory.removeStale(in: parent)
        let staged = try StagedDirectory(in: parent)
        let tree = staged.path + "/tree"
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        let archive = cache.path(for: digest)
        let expansion = limit.map { ExpansionLimit(maxBytes: $0, maxRatio: .max, ratioFloor: .max) } ?? .inputs
        let open = { try ArchiveReader(path: archive, format: .any, policy: .input, limit: expansion) }
        let wanted = { (member: ArchiveEntry) in patterns.contains { matches($0, member) } }
        let members: [ArchiveEntry]
        do {
            members = try ArchiveExtractor.extract(open(), into: tree, wanted: wanted)
        } catch LayerError.archive(let path, let reason) where reason.contains("decompression bomb") {
            throw LayerError.archive(
                path: path,
                reason: reason
                    + " (for an archive that really is this big, set `unpack-limit:` on its add entry, e.g. `unpack-limit: 20G`)"
            )
        }
        // A picked hard link needs its target's content, which the first pass may have left unread.
        let files = Set(members.filter { $0.kind == .file }.map(\.path))
        var targets = Set<String>()
        for member in members where member.kind == .hardlink && wanted(member) {
            guard let target = member.linkTarget, files.contains(target) else {
                throw LayerError.archive(
                    path: member.path, reason: "hard link to '\(member.linkTarget ?? "")', which the archive lacks")
            }
            if !wanted(ArchiveEntry(path: target, kind: .file)) { targets.insert(target) }
        }
        if !targets.isEmpty {
            _ = try ArchiveExtractor.extract(open(), into: tree, wanted: { targets.contains($0.path) })
        }
        try AtomicFile.write(JSONEncoder().encode(Listing(members: members)), to: staged.path + "/members.json")
        try staged.publish(as: root)
        return Unpacked(root: root, members: members)
    }

    /// A pattern with a `/` matches whole member paths, one without matches file names; globs allowed.
    static func matches(_ pattern: String, _ member: ArchiveEntry) -> Bool {
        guard member.kind != .directory else { return false }
        let subject = pattern.contains("/") ? member.path : (member.path as NSString).lastPathComponent
        return fnmatch(pattern, subject, 0) == 0
    }

    /// The layer entries for `patterns` picked out of the archive and placed at `destination`.
    /// A pattern with a `/` matches whole member paths, one without matches file names; globs allowed.
    /// Every pattern must match something, else the error lists what the archive holds.
    static func entries(
        _ unpacked: Unpacked, patterns: [String], destination: String, ownership: Ownership, archiveURL: String,
        location: SourceLocation
    ) throws -> [LayerEntry] {
        let candidates = unpacked.members.filter { $0.kind != .directory }
        var picked: [ArchiveEntry] = []
        var problems: [Diagnostic] = []
        for pattern in patterns {
            let matches = candidates.filter { Self.matches(pattern, $0) }
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
                entries.append(LayerEntry(path: path, kind: .symlink(target: member.linkTarget ?? ""), mode: 0o777))
            case .file, .hardlink:
                let source = member.kind == .file ? member : ArchiveEntry(path: member.linkTarget!, kind: .file)
                entries.append(
                    LayerEntry(
                        path: path, kind: .file(.path(unpacked.file(source))),
                        // setuid and setgid bits from an archive are dropped unless the recipe's `mode` asks.
                        mode: ownership.mode ?? member.mode & ~0o6000,
                        uid: ownership.uid, gid: ownership.gid))
            case .directory, .other:
                break
            }
        }
        return entries
    }
}
