import Foundation
import KilnOCI
import KilnStore

/// cosign's tag-based attachments of a manifest, `sha256-<hex>.sig` (signatures) and `sha256-<hex>.att`
/// (attestations), as images travel: a registry copy, a pull into the store and a push from it carry them, so
/// an image stays verifiable wherever it goes. skopeo and podman look signatures up only by these tags, never
/// through the referrers API, so the tag itself must travel. (KilnSign reads and writes their contents.)
///
/// In the store an attachment is an untagged index.json entry annotated with its tag (`tagKey`): not an image
/// of its own (no `ref.name`, so `images` and `push` selection ignore it) and not a referrer (no
/// `artifactType`), kept by `gc` like every index.json entry.
public enum CosignAttachments {
    /// The index.json annotation naming an attachment's tag (`sha256-<hex>.sig`).
    public static let tagKey = "dev.kiln.attachment.tag"

    /// The attachment tags of a manifest.
    public static func tags(of digest: Digest) -> [String] {
        ["sig", "att"].map { "\(digest.algorithm)-\(digest.encoded).\($0)" }
    }

    /// Puts an attachment (`descriptor` from `source`) under `tag` in `sink`, unless the sink has one under
    /// that tag whose layers these do not all include (payloads of its own, such as a signature made there,
    /// which must not be dropped). Returns whether it was written.
    static func put(
        _ descriptor: Descriptor, data: Data, as tag: String, from source: any BlobSource, to sink: RegistryRepository,
        jobs: Int? = nil
    ) async throws -> Bool {
        let destination = sink.client
        if let existing = try await destination.manifestDescriptor(sink.repository, tag) {
            if existing.digest == descriptor.digest { return false }
            let theirs = try await destination.manifest(sink.repository, existing.digest.description).data
            let mine = try JSONDecoder().decode(Manifest.self, from: data).layers
            let kept = (try? JSONDecoder().decode(Manifest.self, from: theirs).layers) ?? []
            guard kept.allSatisfy({ layer in mine.contains(layer) }) else { return false }
        }
        var plain = descriptor
        plain.annotations = nil
        try await copyImage(plain, from: source, to: sink, tags: [tag], jobs: jobs ?? destination.options.jobs)
        return true
    }

    /// Fetches the attachments of `subject` from `source` into `layout`, each replacing the entry an earlier
    /// pull stored under the same tag. Returns the tags fetched.
    static func pull(of subject: Digest, from source: RegistryRepository, into layout: OCILayout) async throws
        -> [String]
    {
        let sink = CheckedLayout(layout: layout, origin: source.location)
        var fetched: [String] = []
        for tag in tags(of: subject) {
            guard try await source.client.manifestDescriptor(source.repository, tag) != nil else { continue }
            let (_, descriptor) = try await source.resolve(tag)
            try await copyImage(descriptor, from: source, to: sink, jobs: source.client.options.jobs)
            var entry = Descriptor(mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size)
            entry.annotations = [tagKey: tag]
            try layout.updateIndex { index in
                index.manifests.removeAll { $0.annotations?[tagKey] == tag }
                index.manifests.append(entry)
            }
            fetched.append(tag)
        }
        return fetched
    }

    /// Pushes the attachments of `subject` that `layout` holds (from a pull) to `sink`, each under its tag, with
    /// `jobs` transfers at once. Returns the tags written.
    static func push(of subject: Digest, from layout: OCILayout, to sink: RegistryRepository, jobs: Int) async throws
        -> [String]
    {
        let wanted = Set(tags(of: subject))
        var written: [String] = []
        for entry in try layout.index().manifests {
            guard let tag = entry.annotations?[tagKey], wanted.contains(tag) else { continue }
            if try await put(
                entry, data: try layout.readBlob(entry.digest), as: tag, from: layout, to: sink, jobs: jobs)
            {
                written.append(tag)
            }
        }
        return written.sorted()
    }
}
