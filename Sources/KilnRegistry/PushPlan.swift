import Foundation
import KilnOCI
import KilnStore

/// What a push will send, decided from the store's tags alone, before any request: which images, to which
/// repository, under which tags. `Pusher.push(_:)` carries it out. It lives here, beside the pusher, rather than
/// in the store: it knows registry things (repository names and their grammar, a target's namespace), and the
/// store must not; the store only answers which tags it holds.
///
/// Which tags `kiln push` sends (stated in `kiln push --help` and the README):
/// - `NAME:TAG`: that tag.
/// - `NAME`: the image's current version, its highest tag that is a version (compared number by number, so
///   1.10.0 > 1.9.2 > 1.9.2-rc1; `stable` or `latest` are not versions), with the non-version tags naming the
///   same image (the recipe's extra tags of that build); an image with no version tag needs `NAME:TAG`.
/// - nothing named: each image's current version.
/// - `allTags`: every tag of the named images (of all images when none is named).
/// Pulled images (bases fetched by a build, `kiln pull`) are never pushed: they are someone else's images, and
/// `kiln copy` moves them between registries.
public struct PushPlan: Sendable, Equatable {
    /// One image to push: its content once, with every tag that names it.
    public struct Image: Sendable, Equatable {
        /// The image's name in the store (`NAME` of `NAME:TAG`).
        public var name: String
        public var repository: String
        /// The root as the registry gets it: media type, digest and size only (the store's annotations, its
        /// tag and where a pulled image came from, say nothing to the registry).
        public var descriptor: Descriptor
        public var tags: [String]
    }

    public var target: RegistryTarget
    /// By name, then digest.
    public var images: [Image]

    /// What `kiln push` would send of `stored` (the store's tags) for `names` (`NAME` or `NAME:TAG`; none:
    /// every image).
    public init(_ names: [String], allTags: Bool, stored: [TaggedImage], to target: RegistryTarget) throws {
        let own = stored.filter { !Self.isPulled($0) }
        var chosen: [TaggedImage] = []
        for name in names {
            if let pulled = stored.first(where: { Self.isPulled($0) && ($0.reference == name || $0.name == name) }) {
                throw PushPlanError.pulled(reference: pulled.reference)
            }
            if name.contains(":") && !name.hasSuffix(":") {
                guard let hit = own.first(where: { $0.reference == name }) else {
                    throw PushPlanError.unknown(reference: name, known: own.map(\.reference))
                }
                chosen.append(hit)
                continue
            }
            let group = own.filter { $0.name == name }
            guard !group.isEmpty else { throw PushPlanError.unknown(reference: name, known: own.map(\.reference)) }
            chosen += allTags ? group : try Self.current(of: group, name: name)
        }
        if names.isEmpty {
            for (name, group) in Dictionary(grouping: own, by: \.name).sorted(by: { $0.key < $1.key }) {
                chosen += allTags ? group : try Self.current(of: group, name: name)
            }
        }
        try self.init(chosen, to: target)
    }

    /// `init(_:allTags:stored:to:)` on the layout's tags: a name it lacks is the store's unknown tag, and a plan
    /// with nothing to push is an error.
    public init(_ names: [String], allTags: Bool, from layout: OCILayout, to target: RegistryTarget) throws {
        do {
            try self.init(names, allTags: allTags, stored: try layout.tags(), to: target)
        } catch PushPlanError.unknown(let reference, let known) {
            throw StoreError.unknownTag(reference: reference, layout: layout.root, known: known)
        }
        guard !images.isEmpty else { throw PushPlanError.nothingToPush(store: layout.root) }
    }

    /// What `kiln release VERSION` sends: every image of its own the store tags `version`, tagged `version`.
    public init(release version: String, stored: [TaggedImage], to target: RegistryTarget) throws {
        try self.init(stored.filter { $0.tag == version && !Self.isPulled($0) }, to: target)
    }

    /// Groups tags by image and content: one entry per (name, digest) with all its tags, names checked.
    init(_ chosen: [TaggedImage], to target: RegistryTarget) throws {
        self.target = target
        var seen = Set<String>()
        let unique = chosen.filter { seen.insert($0.reference).inserted }
        images = []
        for (name, group) in Dictionary(grouping: unique, by: \.name).sorted(by: { $0.key < $1.key }) {
            let repository = target.repository(name)
            try RepositoryName.validate(repository, registry: target.registry)
            for (_, same) in Dictionary(grouping: group, by: \.descriptor.digest).sorted(by: { $0.key < $1.key }) {
                let stored = same[0].descriptor
                images.append(
                    Image(
                        name: name, repository: repository,
                        descriptor: Descriptor(mediaType: stored.mediaType, digest: stored.digest, size: stored.size),
                        tags: same.map(\.tag).sorted()))
            }
        }
    }

    /// The newest version tag of one image and the tags that name the same content.
    static func current(of group: [TaggedImage], name: String) throws -> [TaggedImage] {
        guard let newest = group.filter({ isVersion($0.tag) }).max(by: { versionLess($0.tag, $1.tag) }) else {
            throw PushPlanError.noVersion(name: name, tags: group.map(\.tag).sorted())
        }
        // Other version tags of the same content (an unchanged image built as several versions) are not the
        // current version: only the non-version tags of that build go with it.
        return group.filter {
            $0.descriptor.digest == newest.descriptor.digest && ($0.tag == newest.tag || !isVersion($0.tag))
        }
    }

    /// Tags a build never writes: entries pulled from a registry (annotated by pull) and the
    /// `REGISTRY/NAME:sha256-…` tags of pinned bases in stores written before that annotation.
    public static func isPulled(_ image: TaggedImage) -> Bool {
        image.descriptor.annotations?[OCIConversion.sourceDigestKey] != nil
            || (image.tag.hasPrefix("sha256-") && image.name.contains("/"))
    }

    /// A tag that names a version: a digit first, after an optional `v`.
    public static func isVersion(_ tag: String) -> Bool {
        let body = tag.hasPrefix("v") ? tag.dropFirst() : Substring(tag)
        return body.first?.isNumber == true
    }

    /// Version order: numeric fields compared as numbers, text fields as text; a pre-release (`-rc1`) sorts
    /// before its release.
    public static func versionLess(_ a: String, _ b: String) -> Bool {
        func split(_ v: String) -> (core: [String], pre: String?) {
            let body = v.hasPrefix("v") ? String(v.dropFirst()) : v
            let dash = body.firstIndex(of: "-")
            let core = dash.map { String(body[..<$0]) } ?? body
            let pre = dash.map { String(body[body.index(after: $0)...]) }
            return (core.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init), pre)
        }
        let (x, y) = (split(a), split(b))
        for (p, q) in zip(x.core, y.core) where p != q {
            if let m = Int(p), let n = Int(q) { return m < n }
            return p < q
        }
        if x.core.count != y.core.count { return x.core.count < y.core.count }
        switch (x.pre, y.pre) {
        case (nil, nil): return false
        case (.some, nil): return true
        case (nil, .some): return false
        case (let p?, let q?): return p < q
        }
    }
}

/// Why a push cannot be planned. Each case is the caller's to fix on the command line.
public enum PushPlanError: Error, CustomStringConvertible, Equatable {
    /// A pulled image was named: Kiln pushes only what it built.
    case pulled(reference: String)
    /// `NAME` alone, and the image has no version tag to pick.
    case noVersion(name: String, tags: [String])
    /// No image of its own has this name or reference.
    case unknown(reference: String, known: [String])
    /// The store holds no image it built.
    case nothingToPush(store: String)

    public var description: String {
        switch self {
        case .pulled(let reference):
            return "\(reference) was pulled from a registry, not built: kiln pushes only its own images "
                + "(use `kiln copy` to move someone else's image between registries)"
        case .noVersion(let name, let tags):
            return "\(name) has no version tag (tags: \(tags.joined(separator: ", "))): "
                + "name one as \(name):TAG, or give --all-tags"
        case .unknown(let reference, let known):
            let list = known.isEmpty ? "it holds no image of its own" : "it has \(known.joined(separator: ", "))"
            return "no image \(reference) in the store: \(list)"
        case .nothingToPush(let store):
            return "\(store) holds no image of its own to push: build one first (`kiln build`)"
        }
    }
}
