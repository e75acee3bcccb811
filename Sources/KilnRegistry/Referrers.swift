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

    /// A push's share of the referrers `source` holds for the manifests of one image: each artifact as a copy
    /// target of `sink` (in the image's place, so its blobs go with the fleet's and its manifest follows the
    /// image's in the same job), and per subject the artifacts `makeFindable` indexes once they are in.
    public struct Attached: Sendable {
        public var targets: [CopyTarget] = []
        public var subjects: [(subject: Digest, artifacts: [Descriptor])] = []
    }

    /// The referrers of every manifest of `graph` that `source` holds, as `Attached` for `sink` at `place`.
    public static func attached(
        to graph: ImageGraph, from source: any ReferrerSource, sink: any ReferrerSink, place: String
    ) async throws -> Attached {
        var attached = Attached()
        for node in graph.nodes {
            let artifacts = try await source.referrers(of: node.descriptor.digest)
            guard !artifacts.isEmpty else { continue }
            attached.subjects.append((node.descriptor.digest, artifacts))
            for artifact in artifacts {
                let plain = Descriptor(mediaType: artifact.mediaType, digest: artifact.digest, size: artifact.size)
                attached.targets.append(CopyTarget(plain, to: sink, place: place))
            }
        }
        return attached
    }

    /// Makes the copied artifacts of `attached` findable in `sink` (idempotent); returns them.
    public static func makeFindable(_ attached: Attached, in sink: any ReferrerSink) async throws -> [Descriptor] {
        for (subject, artifacts) in attached.subjects { try await sink.addReferrers(artifacts, of: subject) }
        return attached.subjects.flatMap(\.artifacts)
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
