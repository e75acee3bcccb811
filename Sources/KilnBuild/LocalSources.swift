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

    /// Walks `directory` relative to its descriptor (`fstatat`, `openat`), so each name costs one lookup in its
    /// own directory instead of a walk of the whole path from the root: a tree of 15.5k files spent measurable
    /// kernel time on those path walks.
    private static func walk(
        directory: String, to destination: String, mode: UInt32?, uid: Int, gid: Int, into entries: inout [LayerEntry]
    ) throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw BuildError.unreadableInput(path: directory, reason: String(cString: strerror(errno)))
        }
        try walk(descriptor: fd, directory: directory, to: destination, mode: mode, uid: uid, gid: gid, into: &entries)
    }

    /// Takes ownership of `fd`.
    private static func walk(
        descriptor fd: Int32, directory: String, to destination: String, mode: UInt32?, uid: Int, gid: Int,
        into entries: inout [LayerEntry]
    ) throws {
        guard let stream = fdopendir(fd) else {
            close(fd)
            throw BuildError.unreadableInput(path: directory, reason: String(cString: strerror(errno)))
        }
        defer { closedir(stream) }
        entries.append(LayerEntry(path: destination, kind: .directory, mode: 0o755, uid: uid, gid: gid))
        var names: [String] = []
        errno = 0
        while let item = readdir(stream) {
            let name = withUnsafeBytes(of: item.pointee.d_name) {
                String(cString: $0.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        guard errno == 0 else {
            throw BuildError.unreadableInput(path: directory, reason: String(cString: strerror(errno)))
        }
        for name in names.sorted() {
            let path = directory + "/" + name
            var info = stat()
            guard fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw BuildError.unreadableInput(path: path, reason: String(cString: strerror(errno)))
            }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else {
                    throw BuildError.unreadableInput(path: path, reason: String(cString: strerror(errno)))
                }
                try walk(
                    descriptor: child, directory: path, to: join(destination, name), mode: mode, uid: uid, gid: gid,
                    into: &entries)
            case S_IFLNK:
                entries.append(
                    LayerEntry(
                        path: join(destination, name), kind: .symlink(target: try linkTarget(fd, name, path: path)),
                        mode: 0o777, uid: uid, gid: gid))
            default:
                entries.append(
                    try entry(for: path, info: info, at: join(destination, name), mode: mode, uid: uid, gid: gid))
            }
        }
    }

    private static func linkTarget(_ directory: Int32, _ name: String, path: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlinkat(directory, name, &buffer, buffer.count - 1)
        guard n >= 0 else { throw BuildError.unreadableInput(path: path, reason: String(cString: strerror(errno))) }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
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
