import Foundation
import KilnLayer
import KilnOCI
import KilnStore

/// Fetches an image into a layout, verifying every digest and size before anything is stored.
public struct Puller: Sendable {
    public let layout: OCILayout
    public let client: RegistryClient
    public let events: @Sendable (TransferEvent) -> Void

    public init(
        layout: OCILayout, client: RegistryClient, events: @escaping @Sendable (TransferEvent) -> Void = { _ in }
    ) {
        self.layout = layout
        self.client = client
        self.events = events
    }

    /// Pulls `reference`. From an index, only `platforms` are fetched (all when nil); with one platform the
    /// layout gets that platform's manifest, with several the original index (all its children are fetched).
    /// Docker documents are stored converted to OCI media types (`OCIConversion`). Returns the descriptor
    /// stored (not tagged: the caller decides the tag), annotated with the reference and the digest the
    /// registry published, for the index.json entry.
    public func pull(_ reference: Reference, platforms: [Platform]?) async throws -> Descriptor {
        let published = try await fetch(reference, platforms: platforms)
        var stored = try OCIConversion.toOCI(published, in: layout)
        // Referrers (SBOMs) and cosign's signatures and attestations name the published digests: they come along
        // when the stored ones are the same.
        if stored.digest == published.digest { try await pullReferrers(of: stored, repository: reference.repository) }
        stored.annotations = [
            OCIConversion.sourceDigestKey: published.digest.description,
            OCIConversion.sourceReferenceKey: reference.description,
        ]
        return stored
    }

    /// Fetches the referrers of every stored manifest of `root` (what `Referrers.list` finds: the API, else the
    /// fallback tag) into the layout, each as an untagged index.json entry with its `artifactType`, as a build
    /// stores its SBOM: `kiln inspect --sbom` and `push` find them, `gc` keeps them while the image is tagged.
    /// Each manifest's cosign `.sig` and `.att` come along too (`CosignAttachments`), so a push of the stored
    /// image publishes them again.
    func pullReferrers(of root: Descriptor, repository: String) async throws {
        let source = RegistryRepository(client: client, repository: repository, events: events)
        let sink = CheckedLayout(layout: layout, origin: "\(client.registry)/\(repository)")
        let graph = try await ImageGraph.walk(root) { descriptor in
            guard let data = try await layout.document(descriptor) else {
                throw GraphCopyError.absent(descriptor.digest, layout.root)
            }
            return data
        }
        for node in graph.nodes {
            _ = try await CosignAttachments.pull(of: node.descriptor.digest, from: source, into: layout)
            for artifact in try await Referrers.list(node.descriptor.digest, in: source) {
                guard let type = artifact.artifactType else { continue }
                let plain = Descriptor(mediaType: artifact.mediaType, digest: artifact.digest, size: artifact.size)
                try await copyImage(plain, from: source, to: sink, jobs: client.options.jobs)
                var entry = plain
                entry.artifactType = type
                // The annotation a build puts on its SBOM's entry (KilnBuild's `DebianPackages.sbomSubjectKey`).
                if type == "application/spdx+json" {
                    entry.annotations = ["dev.kiln.sbom.subject": node.descriptor.digest.description]
                }
                try layout.updateIndex { index in
                    index.manifests.removeAll {
                        $0.digest == entry.digest && $0.annotations?[AnnotationKey.refName] == nil
                    }
                    index.manifests.append(entry)
                }
            }
        }
    }

    /// Copies the published documents into the layout as served.
    func fetch(_ reference: Reference, platforms: [Platform]?) async throws -> Descriptor {
        let source = RegistryRepository(client: client, repository: reference.repository, events: events)
        let (data, descriptor) = try await source.resolve(reference.identifier)
        let jobs = client.options.jobs
        let layout = CheckedLayout(layout: self.layout, origin: "\(client.registry)/\(reference.repository)")
        guard ImageGraph.kind(of: descriptor, data: data) == .index else {
            try await copyImage(descriptor, from: source, to: layout, jobs: jobs)
            return descriptor
        }
        let index = try JSONDecoder().decode(ImageIndex.self, from: data)
        let wanted = index.manifests.filter { child in
            guard let platforms else { return true }
            guard let p = child.platform else { return false }
            return platforms.contains {
                $0.os == p.os && $0.architecture == p.architecture && ($0.variant == nil || $0.variant == p.variant)
            }
        }
        guard !wanted.isEmpty else {
            let offered = index.manifests.compactMap { $0.platform?.description }.joined(separator: ", ")
            throw RegistryError(
                registry: client.registry, repository: reference.repository, step: "choosing a platform",
                message: "\(reference) has no image for \(platforms?.map(\.description).joined(separator: ", ") ?? "")",
                hint: "it offers: \(offered)")
        }
        if wanted.count == 1 && platforms?.count == 1 {
            try await copyImage(wanted[0], from: source, to: layout, jobs: jobs)
            var result = wanted[0]
            result.mediaType = source.servedMediaType(wanted[0].digest) ?? result.mediaType
            return result
        }
        if wanted.count == index.manifests.count {
            try await copyImage(descriptor, from: source, to: layout, jobs: jobs)
            return descriptor
        }
        // A partial index would point at manifests the layout lacks: store one of our own.
        for child in wanted { try await copyImage(child, from: source, to: layout, jobs: jobs) }
        let own = try CanonicalJSON.encode(ImageIndex(manifests: wanted))
        try self.layout.writeBlob(own)
        return Descriptor(mediaType: MediaType.imageIndex, bytes: own)
    }
}
