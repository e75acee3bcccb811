import Foundation
import KilnOCI
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// An OCI image layout on disk (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`).
///
/// Blobs are content-addressed and written once: temp file, fsync, rename. `index.json` is replaced
/// atomically under an exclusive lock, so concurrent writers never lose each other's tags and a process
/// killed at any moment leaves a valid layout. Kiln's private state (lock, staging files, caches) lives
/// in `.kiln/` inside the layout, which OCI readers ignore.
public final class OCILayout: Sendable {
    public let root: String
    /// The last index.json read, with its bytes: a build re-reads the index for every tag it writes.
    private let lastIndex = LastIndex()

    public var privateDirectory: String { root + "/.kiln" }
    var stagingDirectory: String { privateDirectory + "/tmp" }
    var lockPath: String { privateDirectory + "/lock" }
    var indexPath: String { root + "/index.json" }

    /// Opens the layout at `root`. With `create` (what writers use), a valid empty layout is made if nothing is
    /// there; without it (what read-only commands use), a missing layout is an error and nothing is written.
    public init(root: String, create: Bool = true) throws {
        self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: self.root, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw StoreError.notALayout(path: self.root, reason: "it is a file, not a directory")
        }
        guard create else {
            guard fm.fileExists(atPath: self.root + "/oci-layout"), fm.fileExists(atPath: indexPath) else {
                throw StoreError.noLayout(path: self.root)
            }
            return
        }
        do {
            try fm.createDirectory(atPath: stagingDirectory, withIntermediateDirectories: true)
            try fm.createDirectory(atPath: self.root + "/blobs/sha256", withIntermediateDirectories: true)
        } catch {
            throw StoreError.io(path: self.root, operation: "create the image layout", detail: "\(error)")
        }
        try withLock {
            if !fm.fileExists(atPath: self.root + "/oci-layout") {
                try AtomicFile.write(CanonicalJSON.encode(LayoutHeader()), to: self.root + "/oci-layout")
            }
            if !fm.fileExists(atPath: indexPath) {
                try AtomicFile.write(CanonicalJSON.encode(ImageIndex(manifests: [])), to: indexPath)
            }
            removeAbandonedStagingFiles()
        }
    }

    // MARK: Blobs

    public func blobPath(_ digest: Digest) -> String {
        "\(root)/blobs/\(digest.algorithm)/\(digest.encoded)"
    }

    public func hasBlob(_ digest: Digest) -> Bool {
        FileManager.default.fileExists(atPath: blobPath(digest))
    }

    /// Size of a stored blob, or nil when absent.
    public func blobSize(_ digest: Digest) -> Int64? {
        var info = stat()
        guard stat(blobPath(digest), &info) == 0 else { return nil }
        return Int64(info.st_size)
    }

    /// Reads a small blob (a manifest, index or config) and checks its digest.
    public func readBlob(_ digest: Digest) throws -> Data {
        let path = blobPath(digest)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StoreError.missingBlob(digest: digest, layout: root)
        }
        let actual = Digest.sha256(data)
        guard digest.algorithm != "sha256" || actual == digest else {
            throw StoreError.corruptBlob(path: path, expected: digest, actual: actual)
        }
        return data
    }

    /// Stores `data` as a blob and returns its digest. Existing blobs are never rewritten.
    @discardableResult
    public func writeBlob(_ data: Data) throws -> Digest {
        let digest = Digest.sha256(data)
        if hasBlob(digest) { return digest }
        let staged = try makeStagingFile()
        do {
            try staged.handle.write(contentsOf: data)
        } catch {
            staged.discard()
            throw StoreError.io(path: staged.path, operation: "write a blob", detail: "\(error)")
        }
        try commit(staged, as: digest)
        return digest
    }

    /// A temporary file in the layout (same filesystem as `blobs/`, so the final rename is atomic).
    public func makeStagingFile() throws -> StagingFile {
        let path = "\(stagingDirectory)/\(getpid())-\(UUID().uuidString.lowercased())"
        guard FileManager.default.createFile(atPath: path, contents: nil),
            let handle = FileHandle(forWritingAtPath: path)
        else {
            throw StoreError.io(
                path: path, operation: "create a staging file", detail: String(cString: strerror(errno)))
        }
        return StagingFile(path: path, handle: handle)
    }

    /// Moves a fully written staging file into `blobs/` under `digest`: fsync, then rename.
    /// The caller computed the digest while writing; when the blob already exists the staged copy is dropped.
    public func commit(_ staged: StagingFile, as digest: Digest) throws {
        defer { try? staged.handle.close() }
        if hasBlob(digest) {
            staged.discard()
            return
        }
        let directory = "\(root)/blobs/\(digest.algorithm)"
        do {
            try staged.handle.synchronize()
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            staged.discard()
            throw StoreError.io(path: staged.path, operation: "flush a blob", detail: "\(error)")
        }
        guard rename(staged.path, blobPath(digest)) == 0 else {
            let detail = String(cString: strerror(errno))
            staged.discard()
            throw StoreError.io(path: blobPath(digest), operation: "move a blob into place", detail: detail)
        }
        AtomicFile.syncDirectory(directory)
    }

    /// Stores a file that already exists elsewhere (a finished layer written by the layer writer), by copy
    /// or rename, after checking nothing: the caller vouches for `digest`.
    public func adopt(fileAt path: String, as digest: Digest) throws {
        if hasBlob(digest) {
            try? FileManager.default.removeItem(atPath: path)
            return
        }
        let directory = "\(root)/blobs/\(digest.algorithm)"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard rename(path, blobPath(digest)) == 0 else {
            throw StoreError.io(
                path: path, operation: "move a blob into the layout", detail: String(cString: strerror(errno)))
        }
        AtomicFile.syncDirectory(directory)
    }

    /// Every blob digest present in `blobs/sha256`.
    public func allBlobs() throws -> [Digest] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root + "/blobs/sha256")) ?? []
        return names.compactMap { try? Digest(sha256Hex: $0) }.sorted()
    }

    /// Deletes a blob (garbage collection; callers hold the lock and know nothing references it).
    public func removeBlob(_ digest: Digest) throws {
        if unlink(blobPath(digest)) != 0 && errno != ENOENT {
            throw StoreError.io(
                path: blobPath(digest), operation: "remove a blob", detail: String(cString: strerror(errno)))
        }
    }

    // MARK: Index and tags

    public func index() throws -> ImageIndex {
        try index(from: FileManager.default.contents(atPath: indexPath))
    }

    private func index(from data: Data?) throws -> ImageIndex {
        guard let data else {
            throw StoreError.notALayout(path: root, reason: "index.json is missing")
        }
        if let known = lastIndex.index(for: data) { return known }
        do {
            let index = try CanonicalJSON.decode(ImageIndex.self, from: data, path: indexPath)
            lastIndex.remember(index, for: data)
            return index
        } catch {
            throw StoreError.notALayout(
                path: root,
                reason: "index.json is not an image index, \((error as? JSONDocumentError)?.reason ?? "\(error)")")
        }
    }

    /// The tagged images, sorted by name.
    public func tags() throws -> [TaggedImage] {
        try index().manifests.compactMap { descriptor in
            guard let ref = descriptor.annotations?[AnnotationKey.refName] else { return nil }
            return TaggedImage(reference: ref, descriptor: descriptor)
        }.sorted { $0.reference < $1.reference }
    }

    /// The descriptor tagged `NAME:TAG` (or `NAME`, meaning `NAME:latest` if that exists).
    public func resolve(_ reference: String) throws -> Descriptor {
        let all = try tags()
        if let hit = all.first(where: { $0.reference == reference }) { return hit.descriptor }
        if !reference.contains(":"), let hit = all.first(where: { $0.reference == reference + ":latest" }) {
            return hit.descriptor
        }
        throw StoreError.unknownTag(reference: reference, layout: root, known: all.map(\.reference))
    }

    /// Points `reference` (`NAME:TAG`) at `descriptor`, replacing any entry with the same reference.
    /// Every blob the descriptor reaches must already be stored: tags go last.
    public func tag(_ descriptor: Descriptor, as reference: String) throws {
        try tag([(descriptor, reference)])
    }

    /// Points every reference at its descriptor in one replacement of index.json: all of them or none.
    public func tag(_ tags: [(descriptor: Descriptor, reference: String)]) throws {
        try updateIndex { index in
            for (descriptor, reference) in tags {
                index.manifests.removeAll { $0.annotations?[AnnotationKey.refName] == reference }
                var entry = descriptor
                var annotations = entry.annotations ?? [:]
                annotations[AnnotationKey.refName] = reference
                entry.annotations = annotations
                index.manifests.append(entry)
            }
        }
    }

    /// Removes a tag. Returns false when it did not exist.
    @discardableResult
    public func untag(_ reference: String) throws -> Bool {
        var removed = false
        try updateIndex { index in
            let before = index.manifests.count
            index.manifests.removeAll { $0.annotations?[AnnotationKey.refName] == reference }
            removed = index.manifests.count != before
        }
        return removed
    }

    /// Reads, changes and atomically replaces index.json under the layout lock.
    /// Entries are kept sorted by reference so the file's bytes depend only on its content.
    /// A change that leaves the index as it was writes nothing (a no-op rebuild re-tags every image).
    public func updateIndex(_ change: (inout ImageIndex) throws -> Void) throws {
        try withLock {
            let before = FileManager.default.contents(atPath: indexPath)
            var index = try self.index(from: before)
            let original = index
            try change(&index)
            index.manifests.sort {
                ($0.annotations?[AnnotationKey.refName] ?? "", $0.digest) < (
                    $1.annotations?[AnnotationKey.refName] ?? "", $1.digest
                )
            }
            guard index != original else { return }
            try AtomicFile.write(CanonicalJSON.encode(index), to: indexPath)
        }
    }

    /// Runs `body` holding an exclusive lock on the layout (flock: released by the kernel if the process dies).
    public func withLock<T>(_ body: () throws -> T) throws -> T {
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw StoreError.io(
                path: lockPath, operation: "open the store lock", detail: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            if errno != EINTR {
                throw StoreError.io(
                    path: lockPath, operation: "lock the store", detail: String(cString: strerror(errno)))
            }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// Staging files belong to the process whose pid starts their name; those of dead processes are debris
    /// from a killed build. Called under the lock.
    private func removeAbandonedStagingFiles() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: stagingDirectory) else { return }
        for name in names {
            guard let pid = Int32(name.prefix { $0.isNumber }) else { continue }
            if pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(atPath: stagingDirectory + "/" + name)
            }
        }
    }
}

/// A tag in the layout: `NAME:TAG` and the descriptor it points at.
public struct TaggedImage: Sendable, Hashable {
    public var reference: String
    public var descriptor: Descriptor

    public init(reference: String, descriptor: Descriptor) {
        self.reference = reference
        self.descriptor = descriptor
    }

    /// The image name before the last `:`.
    public var name: String {
        guard let colon = reference.lastIndex(of: ":") else { return reference }
        return String(reference[..<colon])
    }

    /// The tag after the last `:`.
    public var tag: String {
        guard let colon = reference.lastIndex(of: ":") else { return "latest" }
        return String(reference[reference.index(after: colon)...])
    }
}

/// A temporary file being written inside a layout.
public struct StagingFile: Sendable {
    public let path: String
    public let handle: FileHandle

    /// Closes and deletes the file.
    public func discard() {
        try? handle.close()
        unlink(path)
    }
}

/// One decoded index.json and the bytes it came from (compared whole, so any change by anyone is seen).
private final class LastIndex: Sendable {
    private let last = Mutex<(bytes: Data, index: ImageIndex)?>(nil)

    func index(for data: Data) -> ImageIndex? {
        last.withLock { $0?.bytes == data ? $0?.index : nil }
    }

    func remember(_ index: ImageIndex, for data: Data) {
        last.withLock { $0 = (data, index) }
    }
}
