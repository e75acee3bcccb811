import CArchive
import Foundation
import KilnOCI

#if canImport(Glibc)
    import Glibc
#endif

public struct LayerOptions: Sendable {
    /// The one mtime of every entry (SOURCE_DATE_EPOCH, else 0).
    public var mtime: Int64
    public var compression: LayerCompression
    /// Compression threads; the output is the same for any value.
    public var threads: Int

    public init(mtime: Int64 = 0, compression: LayerCompression = .gzip, threads: Int? = nil) {
        self.mtime = mtime
        self.compression = compression
        self.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
    }
}

public struct LayerResult: Sendable, Hashable {
    /// sha256 of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    public var diffID: Digest
    /// The blob: media type for the compression, digest and size of the compressed bytes.
    public var descriptor: Descriptor
    public var uncompressedSize: Int64
    /// sha256 of each source file named in `hashing`, over exactly the bytes that went into the layer.
    public var fileDigests: [String: Digest] = [:]
}

/// A look at the start of each source file as the writer reads it, for checks that would otherwise open every
/// input a second time before the layer is written.
public struct LayerInspection: Sendable {
    /// How many leading bytes `check` wants (fewer when the file is shorter).
    public var headerSize: Int
    /// Called once per source file with its path and its first bytes; an error stops the write.
    public var check: @Sendable (_ path: String, _ header: [UInt8]) throws -> Void

    public init(headerSize: Int, check: @escaping @Sendable (_ path: String, _ header: [UInt8]) throws -> Void) {
        self.headerSize = headerSize
        self.check = check
    }
}

/// Writes layers under the determinism contract (see README): restricted pax, sorted entries, parents
/// before children, one mtime, normalised owners and modes, nothing else from the build machine.
public enum LayerWriter {
    /// Writes `entries` as a layer blob at `outputPath` in one pass: tar → diffID hash → compressor →
    /// digest hash → file. Memory stays bounded whatever the file sizes. The file is fsynced.
    ///
    /// Source files whose paths are in `hashing` are also hashed as they are read, so a build that has never
    /// seen its inputs reads them once instead of once to key the layer and again to write it. `inspecting`
    /// sees the first bytes of every source file from the same reads.
    public static func write(
        entries: [LayerEntry], to outputPath: String, options: LayerOptions = LayerOptions(),
        hashing: Set<String> = [], inspecting: LayerInspection? = nil, progress: (@Sendable (Int64) -> Void)? = nil
    ) throws -> LayerResult {
        // libarchive converts UTF-8 names through the locale's charset; in the C locale a non-ASCII name
        // (ca-certificates ships some) cannot be converted and the pax writer crashes on the NULL it gets back.
        // A thread-local UTF-8 locale for the duration of the write: ASCII names give the same bytes as before.
        let utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", nil)
        let previous = utf8.map { uselocale($0) }
        defer {
            if let previous { uselocale(previous) }
            if let utf8 { freelocale(utf8) }
        }
        let ordered = try plan(entries)
        let sink = try LayerSink(
            path: outputPath, compressor: makeCompressor(options.compression, threads: options.threads))
        defer { sink.close() }

        guard let archive = archive_write_new() else {
            throw LayerError.output(path: outputPath, reason: "out of memory")
        }
        defer { archive_write_free(archive) }
        archive_write_set_format_pax_restricted(archive)
        archive_write_add_filter_none(archive)
        // End right after the two zero records, like Go's archive/tar: no padding to a 10 KiB block.
        archive_write_set_bytes_in_last_block(archive, 1)
        let opened = archive_write_open2(
            archive, Unmanaged.passUnretained(sink).toOpaque(), nil,
            { _, client, buffer, length in
                let sink = Unmanaged<LayerSink>.fromOpaque(client!).takeUnretainedValue()
                return sink.consume(UnsafeRawBufferPointer(start: buffer, count: length)) ? la_ssize_t(length) : -1
            }, nil, nil)
        guard opened == ARCHIVE_OK else { throw archiveError(archive, sink, outputPath) }

        let entry = archive_entry_new()
        defer { archive_entry_free(entry) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var done: Int64 = 0
        // Files to hash are read into this stage's buffers and hashed on its thread while the tar stream goes on.
        let fileStage = hashing.isEmpty ? nil : HashStage(name: "kiln.layer.inputs", bufferSize: buffer.count)

        for item in ordered {
            archive_entry_clear(entry)
            archive_entry_set_mtime(entry, time_t(options.mtime), 0)
            archive_entry_set_uid(entry, la_int64_t(item.uid))
            archive_entry_set_gid(entry, la_int64_t(item.gid))
            archive_entry_set_perm(entry, mode_t(item.mode))
            var source: Int32 = -1
            var size: Int64 = 0
            switch item.kind {
            case .directory:
                archive_entry_set_pathname_utf8(entry, item.path + "/")
                archive_entry_set_filetype(entry, FileType.directory)
            case .symlink(let target):
                archive_entry_set_pathname_utf8(entry, item.path)
                archive_entry_set_filetype(entry, FileType.symlink)
                archive_entry_set_symlink_utf8(entry, target)
            case .hardlink(let target):
                archive_entry_set_pathname_utf8(entry, item.path)
                archive_entry_set_filetype(entry, FileType.regular)
                archive_entry_set_hardlink_utf8(entry, target)
            case .file(.bytes(let data)):
                archive_entry_set_pathname_utf8(entry, item.path)
                archive_entry_set_filetype(entry, FileType.regular)
                size = Int64(data.count)
            case .file(.path(let path)):
                archive_entry_set_pathname_utf8(entry, item.path)
                archive_entry_set_filetype(entry, FileType.regular)
                source = open(path, O_RDONLY | O_CLOEXEC)
                var info = stat()
                guard source >= 0, fstat(source, &info) == 0 else {
                    if source >= 0 { Glibc.close(source) }
                    throw LayerError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
                }
                size = Int64(info.st_size)
            }
            defer { if source >= 0 { Glibc.close(source) } }
            archive_entry_set_size(entry, la_int64_t(size))
            guard archive_write_header(archive, entry) == ARCHIVE_OK else {
                throw archiveError(archive, sink, outputPath)
            }

            if case .file(.bytes(let data)) = item.kind, !data.isEmpty {
                let written = data.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, $0.count) }
                guard written == data.count else { throw archiveError(archive, sink, outputPath) }
                done += size
            } else if source >= 0, case .file(.path(let path)) = item.kind {
                let stage = hashing.contains(path) ? fileStage : nil
                var remaining = size
                var header: [UInt8] = []
                while remaining > 0 {
                    let target = stage?.room(for: remaining) ?? buffer
                    let n = try readSome(source, into: target, atMost: remaining, path: path)
                    if let inspecting, header.count < inspecting.headerSize {
                        header += target.prefix(min(n, inspecting.headerSize - header.count))
                    }
                    guard archive_write_data(archive, target.baseAddress, n) == n else {
                        throw archiveError(archive, sink, outputPath)
                    }
                    stage?.filled(n)
                    remaining -= Int64(n)
                    done += Int64(n)
                    progress?(done)
                }
                stage?.endFile(path)
                try inspecting?.check(path, header)
            }
        }
        guard archive_write_close(archive) == ARCHIVE_OK else { throw archiveError(archive, sink, outputPath) }
        var result = try sink.finish(mediaType: options.compression.mediaType)
        result.fileDigests = fileStage?.finish() ?? [:]
        return result
    }

    /// One `read` of up to `limit` bytes; the file ending early means it changed while it was read.
    private static func readSome(
        _ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, atMost limit: Int64, path: String
    ) throws -> Int {
        while true {
            let n = read(fd, buffer.baseAddress, Int(min(Int64(buffer.count), limit)))
            if n > 0 { return n }
            if n < 0 && errno == EINTR { continue }
            throw n == 0
                ? LayerError.fileChanged(path: path)
                : LayerError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
        }
    }

    /// Normalises, validates, completes and orders the entries.
    static func plan(_ entries: [LayerEntry]) throws -> [LayerEntry] {
        var byPath: [String: LayerEntry] = [:]
        var implicit: Set<String> = []
        for var entry in entries {
            entry.path = try LayerPath.normalise(entry.path)
            if entry.path.isEmpty { continue }  // the root itself: its attributes are the runtime's
            if case .hardlink(let target) = entry.kind {
                entry.kind = .hardlink(target: try LayerPath.normalise(target))
            }
            if let existing = byPath[entry.path], existing != entry {
                if implicit.contains(entry.path), case .directory = entry.kind, case .directory = existing.kind {
                    implicit.remove(entry.path)
                } else if case .directory = entry.kind, case .directory = existing.kind {
                    // The same directory declared twice: the later declaration decides, as a later COPY would.
                } else {
                    throw LayerError.conflictingEntries(path: entry.path)
                }
            }
            byPath[entry.path] = entry
            // Every ancestor must exist as a directory, emitted before its children.
            var parent = entry.path
            while let slash = parent.lastIndex(of: "/") {
                parent = String(parent[..<slash])
                if let existing = byPath[parent] {
                    guard case .directory = existing.kind else { throw LayerError.conflictingEntries(path: parent) }
                    break
                }
                byPath[parent] = LayerEntry(path: parent, kind: .directory, mode: 0o755)
                implicit.insert(parent)
            }
        }
        // Paths, not entries, are sorted: moving whole entries around cost more than comparing them.
        let sorted = byPath.keys.sorted(by: LayerPath.precedes).map { byPath[$0]! }
        guard sorted.contains(where: { if case .hardlink = $0.kind { true } else { false } }) else { return sorted }
        // Hard links go after their targets (a link to a later path waits for it).
        var emitted: Set<String> = []
        var waiting: [String: [LayerEntry]] = [:]
        var result: [LayerEntry] = []
        func emit(_ entry: LayerEntry) {
            result.append(entry)
            emitted.insert(entry.path)
            for link in waiting.removeValue(forKey: entry.path) ?? [] { emit(link) }
        }
        for entry in sorted {
            if case .hardlink(let target) = entry.kind {
                guard let targetEntry = byPath[target], case .file = targetEntry.kind else {
                    throw LayerError.hardlinkTargetMissing(path: entry.path, target: target)
                }
                if !emitted.contains(target) {
                    waiting[target, default: []].append(entry)
                    continue
                }
            }
            emit(entry)
        }
        if let (target, links) = waiting.first {
            throw LayerError.hardlinkTargetMissing(path: links[0].path, target: target)
        }
        return result
    }

    private static func archiveError(_ archive: OpaquePointer, _ sink: LayerSink, _ path: String) -> Error {
        if let error = sink.error { return error }
        let message = archive_error_string(archive).map { String(cString: $0) } ?? "libarchive failed"
        return LayerError.output(path: path, reason: message)
    }
}

/// The single pass after tar: hash uncompressed bytes, compress, hash compressed bytes, buffer, write.
final class LayerSink {
    private var diffHasher = SHA256()
    private var compressor: any LayerCompressor
    private let blob: BlobWriter
    private var current: UnsafeMutableRawBufferPointer
    private var buffered = 0
    private var uncompressed: Int64 = 0
    private var compressed: Int64 = 0
    private var closed = false
    private(set) var error: Error?

    init(path: String, compressor: any LayerCompressor) throws {
        self.compressor = compressor
        blob = try BlobWriter(path: path)
        current = blob.takeBuffer()
    }

    /// Called by libarchive with tar bytes. Returns false after a failure (kept in `error`).
    func consume(_ bytes: UnsafeRawBufferPointer) -> Bool {
        do {
            diffHasher.update(bytes)
            uncompressed += Int64(bytes.count)
            try compressor.compress(bytes) { try self.output($0) }
            return true
        } catch {
            self.error = error
            return false
        }
    }

    /// Collects compressed bytes into the current buffer; full buffers go to the blob writer's thread.
    private func output(_ bytes: UnsafeRawBufferPointer) throws {
        compressed += Int64(bytes.count)
        var offset = 0
        while offset < bytes.count {
            let n = min(bytes.count - offset, current.count - buffered)
            (current.baseAddress! + buffered).copyMemory(from: bytes.baseAddress! + offset, byteCount: n)
            buffered += n
            offset += n
            if buffered == current.count { try handOver() }
        }
    }

    private func handOver() throws {
        try blob.submit(current, count: buffered)
        current = blob.takeBuffer()
        buffered = 0
    }

    func finish(mediaType: String) throws -> LayerResult {
        try compressor.finish { try self.output($0) }
        if buffered > 0 { try handOver() }
        let digest = try blob.finish()
        let diffID = diffHasher.finalize()
        return LayerResult(
            diffID: diffID, descriptor: Descriptor(mediaType: mediaType, digest: digest, size: compressed),
            uncompressedSize: uncompressed)
    }

    func close() {
        guard !closed else { return }
        closed = true
        blob.close()
    }
}

/// libarchive's AE_IF* file types (C macros with casts, which Swift does not import).
enum FileType {
    static let regular: UInt32 = 0o100000
    static let directory: UInt32 = 0o040000
    static let symlink: UInt32 = 0o120000
    static let mask: UInt32 = 0o170000
}
