import Foundation
import KilnLayer
import KilnOCI
import KilnProcess
import KilnStore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `kiln export`: one image from the store as a tar archive.
///
/// - `oci`: an OCI image layout (`oci-layout`, `index.json` with the one image, `blobs/sha256/…`), what
///   `skopeo copy oci-archive:FILE` and `podman load` read.
/// - `docker`: the same layout plus docker's `manifest.json` (`Config`, `RepoTags`, `Layers` as
///   `blobs/sha256/…` paths), the combined format Docker ≥ 25 writes, which `podman load` and `docker load` read.
///
/// The bytes depend only on the image: entries sorted bytewise, every mtime 0, uid/gid 0, files 0644 and
/// directories 0755, written by the same deterministic tar writer as layers (without compression).
public enum ImageArchive {
    public enum Format: String, Sendable, CaseIterable, Codable {
        case oci, docker
    }

    public struct Result: Sendable, Codable {
        /// sha256 of the archive's bytes.
        public var digest: Digest
        public var size: Int64
        /// The manifest or index exported.
        public var image: Digest
    }

    /// The entries of the archive for `reference` (`NAME:TAG`). A docker archive holds one platform: for an
    /// image index, `platform`'s manifest (default: this machine's). The image is copied from the store into
    /// an `ArchiveSink` (the same graph copy as push and pull), whose files become the archive's blobs.
    public static func entries(
        layout: OCILayout, reference: String, format: Format, platform: Platform = .host
    ) async throws -> (entries: [LayerEntry], image: Digest) {
        var descriptor = try layout.resolve(reference)
        var images = try layout.images(for: descriptor)
        if format == .docker && ImageGraph.kind(of: descriptor, data: nil) == .index {
            // docker's manifest.json names one config per image: export the platform's manifest alone.
            guard
                let chosen = images.first(where: { $0.config.platform == platform })
                    ?? images.first(where: {
                        $0.config.os == platform.os && $0.config.architecture == platform.architecture
                    })
            else {
                throw ReleaseError.invalidArgument(
                    "\(reference) has no \(platform) image for a docker archive (it has: "
                        + images.map { $0.config.platform.description }.joined(separator: ", ") + ")")
            }
            images = [chosen]
            descriptor = chosen.manifestDescriptor
        }
        descriptor.annotations = [AnnotationKey.refName: reference, AnnotationKey.containerdImageName: reference]
        descriptor.platform = nil
        let sink = ArchiveSink()
        let copied = try await copyImage(descriptor, from: layout, to: sink, jobs: 1)
        // Subjects are not part of the copy; the archive carries them when the store has them, as it always did.
        for subject in copied.graph.subjects.sorted() where sink.files[subject] == nil {
            guard layout.hasBlob(subject) else { throw StoreError.missingBlob(digest: subject, layout: layout.root) }
            sink.add(subject, .path(layout.blobPath(subject)))
        }
        var entries = [
            LayerEntry(path: "oci-layout", kind: .file(.bytes(try CanonicalJSON.encode(LayoutHeader()))), mode: 0o644),
            LayerEntry(
                path: "index.json", kind: .file(.bytes(try CanonicalJSON.encode(ImageIndex(manifests: [descriptor])))),
                mode: 0o644),
        ]
        for (digest, source) in sink.files.sorted(by: { $0.key < $1.key }) {
            entries.append(
                LayerEntry(path: "blobs/\(digest.algorithm)/\(digest.encoded)", kind: .file(source), mode: 0o644))
        }
        if format == .docker {
            struct DockerManifest: Encodable {
                var Config: String
                var RepoTags: [String]
                var Layers: [String]
            }
            let image = images[0]
            let path = { (d: Digest) in "blobs/\(d.algorithm)/\(d.encoded)" }
            let manifest = [
                DockerManifest(
                    Config: path(image.manifest.config.digest), RepoTags: [reference],
                    Layers: image.manifest.layers.map { path($0.digest) })
            ]
            entries.append(
                LayerEntry(path: "manifest.json", kind: .file(.bytes(try CanonicalJSON.encode(manifest))), mode: 0o644))
        }
        return (entries, descriptor.digest)
    }

    /// Writes the archive to `path` atomically (KilnStore's `AtomicFile.replace`). `progress` hears the bytes
    /// of file content written so far and the total (once before the first byte, then as they are written).
    @discardableResult
    public static func write(
        layout: OCILayout, reference: String, format: Format, to path: String, platform: Platform = .host,
        progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)? = nil
    ) async throws -> Result {
        let (entries, image) = try await Self.entries(
            layout: layout, reference: reference, format: format, platform: platform)
        let total = entries.reduce(Int64(0)) { sum, entry in
            switch entry.kind {
            case .file(.path(let source)):
                return sum + ((try? FileManager.default.attributesOfItem(atPath: source)[.size] as? Int64) ?? 0)
            case .file(.bytes(let data)): return sum + Int64(data.count)
            default: return sum
            }
        }
        progress?(0, total)
        let written: (@Sendable (Int64) -> Void)? = progress.map { report in { @Sendable done in report(done, total) } }
        // Blobs are hashed as they are streamed into the archive; one that does not match its name (a tampered
        // or decayed store) fails the export before the archive gets its name.
        var expected: [String: Digest] = [:]
        for entry in entries where entry.path.hasPrefix("blobs/sha256/") {
            if case .file(.path(let source)) = entry.kind {
                expected[source] = try Digest(sha256Hex: String(entry.path.dropFirst("blobs/sha256/".count)))
            }
        }
        let archived = try await Blocking.run("kiln-export") { [expected] in
            try AtomicFile.replace(path) { temp in
                let result = try LayerWriter.write(
                    entries: entries, to: temp, options: LayerOptions(mtime: 0, compression: .none, threads: 1),
                    hashing: Set(expected.keys), progress: written)
                for (source, digest) in expected where result.fileDigests[source] != digest {
                    throw StoreError.corruptBlob(
                        path: source, expected: digest, actual: result.fileDigests[source] ?? digest)
                }
                return result
            }
        }
        return Result(digest: archived.diffID, size: archived.uncompressedSize, image: image)
    }
}

/// An archive being assembled, as the sink of a copy: each blob becomes a file of the archive, read from the
/// source's own file (the store's) or from a copy staged in a temporary directory.
final class ArchiveSink: BlobSink, Sendable {
    private let entries = Mutex<[Digest: LayerEntry.FileContent]>([:])

    var files: [Digest: LayerEntry.FileContent] { entries.withLock { $0 } }

    func add(_ digest: Digest, _ source: LayerEntry.FileContent) { entries.withLock { $0[digest] = source } }

    func has(_ descriptor: Descriptor) async throws -> Bool { entries.withLock { $0[descriptor.digest] != nil } }

    func putBlob(_ descriptor: Descriptor, from source: any BlobSource) async throws {
        guard let path = source.localFile(descriptor) else {
            throw StoreError.missingBlob(digest: descriptor.digest, layout: source.location)
        }
        add(descriptor.digest, .path(path))
    }

    func putManifest(_ descriptor: Descriptor, data: Data) async throws { add(descriptor.digest, .bytes(data)) }

    func tag(_ descriptor: Descriptor, data: Data, as tag: String) async throws {}
}
