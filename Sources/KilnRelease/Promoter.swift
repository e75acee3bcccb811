import Foundation
import KilnOCI
import KilnRegistry
import KilnSign

/// `kiln promote`: a release moves from one registry namespace to another (test to production) only when
/// every image of it carries a valid signature by one of the keys at the source. Then each image is copied by
/// digest (every platform, its SBOMs, its `.sig` and `.att` along, tagged VERSION), and the release document,
/// re-addressed to the destination, is pushed there as `release-VERSION`, so `rollback` and `deploy-refs`
/// work against the destination. Nothing is copied when any signature check fails.
public struct Promoter: Sendable {
    public let source: RegistryClient
    public let destination: RegistryClient
    public let from: RegistryTarget
    public let to: RegistryTarget
    public let keys: [PublicKey]
    public let events: @Sendable (TransferEvent) -> Void

    public init(
        source: RegistryClient, destination: RegistryClient, from: RegistryTarget, to: RegistryTarget,
        keys: [PublicKey], events: @escaping @Sendable (TransferEvent) -> Void = { _ in }
    ) {
        self.source = source
        self.destination = destination
        self.from = from
        self.to = to
        self.keys = keys
        self.events = events
    }

    public struct Result: Encodable, Sendable {
        public var version: String
        /// The signature check of each image at the source.
        public var verified: [SignatureVerifier.Report]
        /// Empty when a check failed (nothing was copied).
        public var copied: [RemoteCopy.Result]
        /// The release as recorded at the destination; nil when nothing was copied.
        public var release: ReleaseDocument?
        public var promoted: Bool { release != nil }
    }

    public func promote(_ version: String) async throws -> Result {
        let document = try await ReleaseArtifact(client: source, namespace: from.namespace).fetch(version)
        let verifier = SignatureVerifier(client: source, keys: keys)
        var reports: [SignatureVerifier.Report] = []
        for image in document.images {
            reports.append(
                try await verifier.verify(
                    Reference(
                        registry: from.registry, repository: from.repository(image.name), tag: version,
                        digest: image.digest)))
        }
        guard reports.allSatisfy(\.verified) else {
            return Result(version: version, verified: reports, copied: [], release: nil)
        }
        let copy = RemoteCopy(source: source, destination: destination, events: events)
        var copied: [RemoteCopy.Result] = []
        for image in document.images {
            copied.append(
                try await copy.copy(
                    Reference(registry: from.registry, repository: from.repository(image.name), digest: image.digest),
                    to: Reference(registry: to.registry, repository: to.repository(image.name), tag: version)))
        }
        let promoted = document.relocated(to: to)
        try await ReleaseArtifact(client: destination, namespace: to.namespace, events: events).push(promoted)
        return Result(version: version, verified: reports, copied: copied, release: promoted)
    }
}
