import Foundation
import KilnOCI
import KilnStore
import Synchronization

/// Artifacts that describe an image (its SPDX SBOM) published beside it, found the two ways OCI 1.1 readers
/// (oras, cosign, trivy) look: the registry's referrers API when it answers, else the tag `sha256-<hex>` of
/// the subject pointing at an index of its referrers (the fallback tag scheme; docker-registry 2.8 has no
/// referrers API).
public enum Referrers {
    /// The tag of the fallback scheme for a subject.
    public static func fallbackTag(_ subject: Digest) -> String { "\(subject.algorithm)-\(subject.encoded)" }

    /// Pushes each of the layout's referrers of `subject` into `sink`'s repository and makes it discoverable.
    /// Returns the referrers pushed. Idempotent: a second push adds nothing to the fallback index.
    public static func push(
        of subject: Digest, from layout: OCILayout, to sink: RegistryRepository, jobs: Int
    ) async throws -> [Descriptor] {
        let artifacts = try layout.referrers(of: subject)
        guard !artifacts.isEmpty else { return [] }
        for artifact in artifacts {
            var plain = artifact
            plain.annotations = nil
            try await copyImage(plain, from: layout, to: sink, jobs: jobs)
        }
        let client = sink.client
        if let listed = try await client.referrers(sink.repository, subject),
            Set(artifacts.map(\.digest)).isSubset(of: listed.manifests.map(\.digest))
        {
            return artifacts
        }
        let tag = fallbackTag(subject)
        var index = ImageIndex(manifests: [])
        if try await client.manifestDescriptor(sink.repository, tag) != nil {
            let (data, _) = try await client.manifest(sink.repository, tag)
            if let existing = try? JSONDecoder().decode(ImageIndex.self, from: data) { index = existing }
        }
        let before = index
        for artifact in artifacts where !index.manifests.contains(where: { $0.digest == artifact.digest }) {
            index.manifests.append(artifact)
        }
        guard index != before || index.manifests.isEmpty else { return artifacts }
        index.mediaType = MediaType.imageIndex
        index.manifests.sort { $0.digest < $1.digest }
        let data = try CanonicalJSON.encode(index)
        try await client.putManifest(sink.repository, tag, data: data, mediaType: MediaType.imageIndex)
        return artifacts
    }

    /// The referrers of `subject` in a repository: the API's answer, else the fallback tag's index (empty
    /// when neither exists). `artifactType` filters.
    public static func list(
        _ subject: Digest, in repository: String, client: RegistryClient, artifactType: String? = nil
    ) async throws -> [Descriptor] {
        var found: [Descriptor]
        if let listed = try await client.referrers(repository, subject) {
            found = listed.manifests
        } else if try await client.manifestDescriptor(repository, fallbackTag(subject)) != nil {
            let (data, _) = try await client.manifest(repository, fallbackTag(subject))
            found = (try? JSONDecoder().decode(ImageIndex.self, from: data))?.manifests ?? []
        } else {
            found = []
        }
        if let artifactType { found = found.filter { $0.artifactType == artifactType } }
        return found
    }

    /// Referrers found per image of a push, filled by parallel workers.
    final class Collected: Sendable {
        private let found: Mutex<[[Descriptor]]>

        init(count: Int) { found = Mutex(Array(repeating: [], count: count)) }

        func add(_ descriptors: [Descriptor], at index: Int) { found.withLock { $0[index] += descriptors } }

        subscript(index: Int) -> [Descriptor] { found.withLock { $0[index] } }
    }
}
