import Foundation
import KilnBuild
import KilnOCI
import KilnRegistry
import KilnSign
import KilnStore

/// A moving tag pointed (or to be pointed) from one manifest to another.
public struct TagMove: Codable, Sendable, Equatable {
    public var repository: String
    public var tag: String
    /// What the tag pointed at before; nil when it did not exist.
    public var from: Digest?
    public var to: Digest
    public var changes: Bool { from != to }
}

/// Publishes releases and moves their tags: `kiln release` and `kiln rollback`.
public struct Releaser: Sendable {
    public let client: RegistryClient
    public let target: RegistryTarget
    public let events: @Sendable (TransferEvent) -> Void

    public init(
        client: RegistryClient, target: RegistryTarget, events: @escaping @Sendable (TransferEvent) -> Void = { _ in }
    ) {
        self.client = client
        self.target = target
        self.events = events
    }

    public struct ReleaseInputs: Sendable {
        public var version: String
        public var movingTags: [String]
        public var revision: String?
        public var recipesDigest: Digest?
        public var lockDigest: Digest?
        public var created: String
        /// Replace an existing `releases/VERSION.json` that records other images (a release is otherwise final).
        public var replace: Bool

        public init(
            version: String, movingTags: [String], revision: String?, recipesDigest: Digest?, lockDigest: Digest?,
            created: String, replace: Bool = false
        ) {
            self.replace = replace
            self.version = version
            self.movingTags = movingTags
            self.revision = revision
            self.recipesDigest = recipesDigest
            self.lockDigest = lockDigest
            self.created = created
        }
    }

    /// Pushes every image tagged `*:VERSION` (tagged VERSION in the registry), writes the release document to
    /// `directory`, pushes it as an artifact, then points the moving tags at the release: tags last, so no
    /// moving tag ever names something incomplete.
    public func release(from layout: OCILayout, _ inputs: ReleaseInputs, directory: ReleaseDirectory) async throws
        -> (ReleaseDocument, [TagMove])
    {
        let (document, moves, _) = try await release(from: layout, inputs, directory: directory, signingKey: nil)
        return (document, moves)
    }

    /// `release`, and with a key every image of the release signed (cosign's `.sig`, the index and each
    /// platform manifest) and its build provenance attached as a signed DSSE attestation (cosign's `.att`),
    /// after it is pushed and before any moving tag points at it: a consumer that requires signatures never
    /// sees a moving tag on an unsigned image.
    public func release(
        from layout: OCILayout, _ inputs: ReleaseInputs, directory: ReleaseDirectory, signingKey: PrivateKey?
    ) async throws -> (ReleaseDocument, [TagMove], [ImageSigner.Signed]) {
        // Every image of its own tagged VERSION, as push plans it (pulled images are never released).
        let plan = try PushPlan(release: inputs.version, stored: try layout.tags(), to: target)
        let tagged = plan.images
        guard !tagged.isEmpty else { throw ReleaseError.noImages(version: inputs.version, layout: layout.root) }
        // A release is final: the same version with other images needs a new version (or an explicit replace).
        if !inputs.replace, let existing = try? directory.load(inputs.version) {
            let recorded = existing.images.map { "\($0.name)@\($0.digest)" }.sorted()
            let now = tagged.map { "\($0.name)@\($0.descriptor.digest)" }.sorted()
            if recorded != now {
                throw ReleaseError.invalidArgument(
                    "release \(inputs.version) already exists in \(directory.file(for: inputs.version)) with other images "
                        + "(\(recorded.joined(separator: ", "))): release a new version, or pass --force to replace it")
            }
            // Other options would rewrite what operators pinned just as silently.
            var changed: [String] = []
            if existing.registry != target.registry || existing.namespace != target.namespace {
                changed.append(
                    "registry \(existing.registry)/\(existing.namespace) → \(target.registry)/\(target.namespace)")
            }
            if existing.movingTags != inputs.movingTags {
                changed.append("moving tags \(existing.movingTags) → \(inputs.movingTags)")
            }
            if !changed.isEmpty {
                throw ReleaseError.invalidArgument(
                    "release \(inputs.version) already exists in \(directory.file(for: inputs.version)) with other options "
                        + "(\(changed.joined(separator: "; "))): release a new version, or pass --force to replace it")
            }
        }
        let pushed = try await Pusher(layout: layout, client: client, events: events).push(plan)
        var images: [ReleaseDocument.Image] = []
        for (image, result) in zip(tagged, pushed) {
            var platforms: [ReleaseDocument.PlatformManifest]?
            if MediaType.indexTypes.contains(result.mediaType) {
                let index = try CanonicalJSON.decode(ImageIndex.self, from: layout.readBlob(result.digest))
                platforms = index.manifests.map {
                    .init(platform: $0.platform?.description ?? "unknown", digest: $0.digest, mediaType: $0.mediaType)
                }
            }
            images.append(
                .init(
                    name: image.name, repository: result.repository, reference: result.reference, digest: result.digest,
                    mediaType: result.mediaType, tags: result.tags, platforms: platforms))
        }
        var document = ReleaseDocument(
            version: inputs.version, created: inputs.created, revision: inputs.revision,
            recipesDigest: inputs.recipesDigest, lockDigest: inputs.lockDigest, registry: target.registry,
            namespace: target.namespace, movingTags: inputs.movingTags, images: images)
        // Releasing the same images again keeps the first release's date: the document stays the same bytes.
        if let existing = try? directory.load(inputs.version), existing.images == document.images,
            existing.movingTags == document.movingTags, existing.registry == document.registry
        {
            document.created = existing.created
        }
        var signatures: [ImageSigner.Signed] = []
        if let signingKey {
            let signer = try ImageSigner(client: client, key: signingKey)
            let attestations = AttestationPublisher(client: client, key: signingKey)
            for (image, stored) in zip(document.images, tagged) {
                signatures += try await signer.sign(
                    Reference(
                        registry: target.registry, repository: image.repository, tag: inputs.version,
                        digest: image.digest))
                // Each platform manifest's build provenance, DSSE-signed, in cosign's `.att` layout.
                for platform in try layout.images(for: stored.descriptor) {
                    let manifest = platform.manifestDescriptor
                    guard let statement = try KilnProvenance.stored(in: layout, manifest: manifest.digest) else {
                        continue
                    }
                    var subject = manifest
                    subject.annotations = nil
                    subject.platform = nil
                    try await attestations.attach(
                        statement: statement,
                        predicateType: SLSAProvenance<KilnProvenance.ExternalParameters>.predicateType,
                        to: subject, in: image.repository)
                }
            }
        }
        try directory.save(document)
        _ = try await ReleaseArtifact(client: client, namespace: target.namespace, events: events).push(document)
        var moves: [TagMove] = []
        for image in document.images {
            for tag in inputs.movingTags {
                let current = try await client.manifestDescriptor(image.repository, tag)?.digest
                let move = TagMove(repository: image.repository, tag: tag, from: current, to: image.digest)
                if move.changes {
                    try await client.putManifest(
                        image.repository, tag, data: try layout.readBlob(image.digest), mediaType: image.mediaType)
                    events(.manifestPushed(repository: image.repository, reference: tag))
                }
                moves.append(move)
            }
        }
        return (document, moves, signatures)
    }

    /// The release's images as they should be addressed now: in `target` (which may differ from where the
    /// document says they were pushed, e.g. a mirror).
    public func relocated(_ document: ReleaseDocument) -> [ReleaseDocument.Image] {
        document.relocated(to: target).images
    }

    /// Every manifest, config and layer the release needs that the registry lacks (empty when complete).
    /// The graph is walked in the registry (a manifest it lacks is reported, not walked); each blob is a HEAD.
    public func missingContent(_ document: ReleaseDocument) async throws -> [String] {
        var missing: [String] = []
        for image in relocated(document) {
            let repository = RegistryRepository(client: client, repository: image.repository)
            let root = Descriptor(mediaType: image.mediaType, digest: image.digest, size: 0)
            let graph = try await ImageGraph.walk(root) { descriptor in
                do {
                    return try await repository.document(descriptor)
                } catch let error as RegistryError where error.status == 404 {
                    return nil
                }
            }
            let place = "\(target.registry)/\(image.repository)"
            for (descriptor, path) in graph.absent {
                let what = [image.name, path].filter { !$0.isEmpty }.joined(separator: " ")
                missing.append("manifest \(place)@\(descriptor.digest) (\(what))")
            }
            for blob in graph.blobs where try await client.blobSize(image.repository, blob.descriptor.digest) == nil {
                let what = [image.name, blob.owner, blob.role].filter { !$0.isEmpty }.joined(separator: " ")
                missing.append("blob \(place)@\(blob.descriptor.digest) (\(what))")
            }
        }
        return missing
    }

    /// The moves that would point `tags` of every image at the release. Checks first that the registry still
    /// has everything the release needs and throws `ReleaseError.missingContent` (changing nothing) if not.
    public func planRollback(_ document: ReleaseDocument, tags: [String]) async throws -> [TagMove] {
        let missing = try await missingContent(document)
        guard missing.isEmpty else { throw ReleaseError.missingContent(version: document.version, missing: missing) }
        var moves: [TagMove] = []
        for image in relocated(document) {
            for tag in tags {
                let current = try await client.manifestDescriptor(image.repository, tag)?.digest
                moves.append(TagMove(repository: image.repository, tag: tag, from: current, to: image.digest))
            }
        }
        return moves
    }

    /// Carries out planned moves: the manifest bytes are fetched by digest (and verified) and PUT under the tag.
    public func apply(_ moves: [TagMove]) async throws {
        for move in moves where move.changes {
            let (data, descriptor) = try await client.manifest(move.repository, move.to.description)
            try await client.putManifest(move.repository, move.tag, data: data, mediaType: descriptor.mediaType)
            events(.manifestPushed(repository: move.repository, reference: move.tag))
        }
    }
}

extension ReleaseDocument {
    /// The same release addressed in `target` (a mirror, or the destination of a promotion): the same digests,
    /// each image in `target`'s repository of its name.
    public func relocated(to target: RegistryTarget) -> ReleaseDocument {
        var moved = self
        moved.registry = target.registry
        moved.namespace = target.namespace
        moved.images = images.map { image in
            var image = image
            image.repository = target.repository(image.name)
            image.reference = "\(target.registry)/\(image.repository)@\(image.digest)"
            return image
        }
        return moved
    }
}

/// A release document stored in the registry as an OCI artifact, so a rollback works from any machine:
/// a manifest with `artifactType: application/vnd.kiln.release.v1+json`, the empty config, and one layer
/// that is the document, tagged `release-VERSION` in the repository `NAMESPACE/kiln-releases` (one
/// repository for all releases of a namespace: `kiln releases` of a registry is one tag list).
public struct ReleaseArtifact: Sendable {
    public static let repositoryName = "kiln-releases"
    public static let emptyConfig = Data("{}".utf8)

    public let client: RegistryClient
    public let namespace: String
    public let events: @Sendable (TransferEvent) -> Void

    public init(
        client: RegistryClient, namespace: String, events: @escaping @Sendable (TransferEvent) -> Void = { _ in }
    ) {
        self.client = client
        self.namespace = namespace
        self.events = events
    }

    public var repository: String { Self.repository(namespace: namespace) }

    public static func repository(namespace: String) -> String {
        namespace.isEmpty ? repositoryName : "\(namespace)/\(repositoryName)"
    }

    public static func tag(_ version: String) -> String { "release-\(version)" }

    /// The artifact manifest for a document's bytes.
    public static func manifest(for document: Data, version: String, created: String) -> Manifest {
        var config = Descriptor(mediaType: MediaType.empty, bytes: emptyConfig)
        config.data = emptyConfig.base64EncodedString()
        var layer = Descriptor(mediaType: ReleaseDocument.mediaType, bytes: document)
        layer.annotations = [AnnotationKey.title: "\(version).json"]
        return Manifest(
            config: config, layers: [layer],
            annotations: [AnnotationKey.version: version, AnnotationKey.created: created],
            artifactType: ReleaseDocument.mediaType)
    }

    /// Pushes the document (staged in a private temporary layout) and tags it `release-VERSION`.
    @discardableResult
    public func push(_ document: ReleaseDocument) async throws -> Digest {
        let staging = FileManager.default.temporaryDirectory.path + "/kiln-release-\(UUID().uuidString.lowercased())"
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let layout = try OCILayout(root: staging)
        let bytes = try document.encoded()
        try layout.writeBlob(Self.emptyConfig)
        try layout.writeBlob(bytes)
        let manifest = try CanonicalJSON.encode(
            Self.manifest(for: bytes, version: document.version, created: document.created))
        try layout.writeBlob(manifest)
        let descriptor = Descriptor(mediaType: MediaType.imageManifest, bytes: manifest)
        _ = try await Pusher(layout: layout, client: client, events: events).push([
            .init(repository: repository, descriptor: descriptor, tags: [Self.tag(document.version)])
        ])
        return descriptor.digest
    }

    /// Reads `release-VERSION` back from the registry (every digest verified).
    public func fetch(_ version: String) async throws -> ReleaseDocument {
        let (data, _) = try await client.manifest(repository, Self.tag(version))
        let manifest = try CanonicalJSON.decode(Manifest.self, from: data)
        guard manifest.artifactType == ReleaseDocument.mediaType,
            let layer = manifest.layers.first(where: { $0.mediaType == ReleaseDocument.mediaType })
        else {
            throw ReleaseError.invalidDocument(
                source: "\(client.registry)/\(repository):\(Self.tag(version))",
                reason: "not a kiln release artifact (artifactType \(manifest.artifactType ?? "none"))")
        }
        let bytes = try await RegistryRepository(client: client, repository: repository).contents(layer)
        return try ReleaseDocument.decode(bytes, source: "\(client.registry)/\(repository):\(Self.tag(version))")
    }
}
