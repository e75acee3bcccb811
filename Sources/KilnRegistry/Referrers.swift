import Foundation
import KilnOCI
import KilnStore

/// Artifacts that describe an image (its SPDX SBOM) published beside it, found the two ways OCI 1.1 readers
/// (oras, cosign, trivy) look: the registry's referrers API when it answers, else the tag `sha256-<hex>` of
/// the subject pointing at an index of its referrers (the fallback tag scheme; docker-registry 2.8 has no
/// referrers API).
public enum Referrers {
    /// The tag of the fallback scheme for a subject.
    public static func fallbackTag(_ subject: Digest) -> String { "\(subject.algorithm)-\(subject.encoded)" }

    /// Copies each of the source's referrers of `subject` into `sink` and makes them findable there. Returns
    /// the referrers pushed. Idempotent: a second push adds nothing.
    public static func push(
        of subject: Digest, from source: any ReferrerSource, to sink: any ReferrerSink, jobs: Int
    ) async throws -> [Descriptor] {
        let artifacts = try await source.referrers(of: subject)
        guard !artifacts.isEmpty else { return [] }
        for artifact in artifacts {
            try await copyImage(
                Descriptor(mediaType: artifact.mediaType, digest: artifact.digest, size: artifact.size),
                from: source, to: sink, jobs: jobs)
        }
        try await sink.addReferrers(artifacts, of: subject)
        return artifacts
    }

    /// The referrers of `subject` in `source` (a registry repository, the store), `artifactType` filtering.
    public static func list(
        _ subject: Digest, in source: any ReferrerSource, artifactType: String? = nil
    ) async throws -> [Descriptor] {
        let found = try await source.referrers(of: subject)
        guard let artifactType else { return found }
        return found.filter { $0.artifactType == artifactType }
    }
}

/// A registry repository lists the referrers of a subject from the referrers API when it answers, else from
/// the index under the fallback tag (none when neither exists).
extension RegistryRepository: ReferrerSource {
    public func referrers(of subject: Digest) async throws -> [Descriptor] {
        if let listed = try await client.referrers(repository, subject) { return listed.manifests }
        let tag = Referrers.fallbackTag(subject)
        guard try await client.manifestDescriptor(repository, tag) != nil else { return [] }
        let (data, _) = try await client.manifest(repository, tag)
        return (try? JSONDecoder().decode(ImageIndex.self, from: data))?.manifests ?? []
    }
}

/// A registry repository indexes referrers itself when it answers the referrers API; otherwise they are added
/// to the OCI index under the subject's fallback tag (`sha256-<hex>`), which is written only when it changes.
extension RegistryRepository: ReferrerSink {
    public func addReferrers(_ artifacts: [Descriptor], of subject: Digest) async throws {
        if let listed = try await client.referrers(repository, subject),
            Set(artifacts.map(\.digest)).isSubset(of: listed.manifests.map(\.digest))
        {
            return
        }
        let tag = Referrers.fallbackTag(subject)
        var index = ImageIndex(manifests: [])
        if try await client.manifestDescriptor(repository, tag) != nil {
            let (data, _) = try await client.manifest(repository, tag)
            if let existing = try? JSONDecoder().decode(ImageIndex.self, from: data) { index = existing }
        }
        let before = index
        for artifact in artifacts where !index.manifests.contains(where: { $0.digest == artifact.digest }) {
            index.manifests.append(artifact)
        }
        guard index != before || index.manifests.isEmpty else { return }
        index.mediaType = MediaType.imageIndex
        index.manifests.sort { $0.digest < $1.digest }
        let data = try CanonicalJSON.encode(index)
        try await client.putManifest(repository, tag, data: data, mediaType: MediaType.imageIndex)
    }
}
