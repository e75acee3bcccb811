import Foundation
import KilnLayer
import KilnRecipe

#if canImport(Glibc)
    import Glibc
#endif

/// Expands a recipe's local `src` (a file, a directory, or a glob, relative to the recipe file) into layer
/// entries under a destination. Modes are normalised so the umask and checkout tool never leak into a layer:
/// directories 0755, files 0755 when any execute bit is set and 0644 otherwise, unless the recipe says.
enum LocalSources {
    struct Match {
        var absolutePath: String
        var relativeName: String
    }

    /// Paths matching `pattern` (relative to `directory`), sorted. A pattern without glob characters matches
    /// itself if it exists.
    static func matches(_ pattern: String, in directory: String) -> [String] {
        let full = pattern.hasPrefix("/") ? pattern : directory + "/" + pattern
        guard pattern.contains(where: { "*?[".contains($0) }) else {
            return FileManager.default.fileExists(atPath: full) ? [full] : []
        }
        var result = glob_t()
        defer { globfree(&result) }
        guard glob(full, 0, nil, &result) == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { result.gl_pathv[$0].map { String(cString: $0) } }.sorted()
    }

    /// The symlink a match reaches outside the recipe directory through, if any. A path written inside the
    /// recipe directory must really be inside it: `lnk/etc/shadow` with `lnk/etc -> /etc` would otherwise copy
    /// the host's file into the image. The match itself may be a symlink (it is added as one, not followed),
    /// unless it is named with a trailing `/`, which follows it. Paths written outside (absolute, `..`) are
    /// the recipe's explicit choice and are not checked.
    static func escape(_ path: String, in directory: String) -> (through: String, to: String)? {
        let lexical = normalised(path)
        let root = normalised(directory)
        guard lexical.hasPrefix(root + "/"), let realRoot = realPath(root) else { return nil }
        let followed = path.hasSuffix("/") ? lexical : String(lexical[..<lexical.lastIndex(of: "/")!])
        guard let real = realPath(followed) else { return nil }
        return real == realRoot || real.hasPrefix(realRoot + "/") ? nil : (followed, real)
    }

    /// `.` and empty components dropped, `..` applied, without looking at the filesystem (Foundation's
    /// `standardizingPath` resolves symlinks on Linux, which is exactly what must not happen here).
    static func normalised(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") where part != "." {
            if part == ".." { _ = parts.popLast() } else { parts.append(part) }
        }
        return "/" + parts.joined(separator: "/")
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Entries for `src` placed at `destination`. A trailing `/` on the destination, a directory source, or a
    /// glob means "into this directory"; a single file with a destination not ending in `/` is renamed to it.
    static func entries(
        matching paths: [String], isGlob: Bool, destination: String, mode: UInt32?, uid: Int, gid: Int
    ) throws -> [LayerEntry] {
        var entries: [LayerEntry] = []
        let into = destination.hasSuffix("/") || isGlob || paths.count > 1
        for path in paths {
            var info = stat()
            guard lstat(path, &info) == 0 else {
                throw BuildError.unreadableInput(path: path, reason: String(cString: strerror(errno)))
            }
            let name = (path as NSString).lastPathComponent
            if (info.st_mode & S_IFMT) == S_IFDIR {
                let root = into ? join(destination, name) : destination
                try walk(directory: path, to: root, mode: mode, uid: uid, gid: gid, into: &entries)
            } else {
                let target = into ? join(destination, name) : destination
                entries.append(try entry(for: path, info: info, at: target, mode: mode, uid: uid, gid: gid))
            }
        }
        return entries
    }

    private static func walk(
        directory: String, to destination: String, mode: UInt32?, uid: Int, gid: Int, into entries: inout [LayerEntry]
    ) throws {
        entries.append(LayerEntry(path: destination, kind: .directory, mode: 0o755, uid: uid, gid: gid))
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        for name in names {
            let path = directory + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0 else {
                throw BuildError.unreadableInput(path: path, reason: String(cString: strerror(errno)))
            }
            if (info.st_mode & S_IFMT) == S_IFDIR {
                try walk(directory: path, to: join(destination, name), mode: mode, uid: uid, gid: gid, into: &entries)
            } else {
                entries.append(
                    try entry(for: path, info: info, at: join(destination, name), mode: mode, uid: uid, gid: gid))
            }
        }
    }

    private static func entry(for path: String, info: stat, at target: String, mode: UInt32?, uid: Int, gid: Int)
        throws -> LayerEntry
    {
        switch info.st_mode & S_IFMT {
        case S_IFLNK:
            let link = try FileManager.default.destinationOfSymbolicLink(atPath: path)
            return LayerEntry(path: target, kind: .symlink(target: link), mode: 0o777, uid: uid, gid: gid)
        case S_IFREG:
            let normalised: UInt32 = (UInt32(info.st_mode) & 0o111) != 0 ? 0o755 : 0o644
            return LayerEntry(path: target, kind: .file(.path(path)), mode: mode ?? normalised, uid: uid, gid: gid)
        default:
            throw BuildError.unreadableInput(
                path: path, reason: "only regular files, directories and symlinks can be added to a layer")
        }
    }

    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}

extension LocalSources {
    static func escapeDiagnostic(_ location: SourceLocation, path: String, link: (through: String, to: String))
        -> Diagnostic
    {
        Diagnostic(
            location, "\(path) leads outside the recipe directory: \(link.through) is a symlink to \(link.to)",
            hint: "copy the file into the recipe directory; a recipe reads only its own files through symlinks")
    }
}
