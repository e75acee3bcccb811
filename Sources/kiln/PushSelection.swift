import ArgumentParser
import Foundation
import KilnOCI
import KilnStore

/// Which stored tags `kiln push` sends. One rule, stated in `kiln push --help` and the README:
/// - `NAME:TAG`: that tag.
/// - `NAME`: the image's current version, the highest tag that is a version (compared number by number, so
///   1.10.0 > 1.9.2 > 1.9.2-rc1; tags like `stable` are not versions), with the other non-version tags naming
///   the same image (the recipe's extra tags of that build); an image with no version tag needs NAME:TAG.
/// - nothing named: each image's current version, as for `NAME`.
/// - `--all-tags`: every tag of the named images (of all images when none is named).
/// Pulled images (bases fetched by a build, `kiln pull`) are never pushed: they are other people's images;
/// `kiln copy` moves them between registries.
enum PushSelection {
    static func select(_ names: [String], allTags: Bool, from layout: OCILayout) throws -> [TaggedImage] {
        let all = try layout.tags()
        let own = all.filter { !isPulled($0) }
        var chosen: [TaggedImage] = []
        for name in names {
            if let pulled = all.first(where: { isPulled($0) && ($0.reference == name || $0.name == name) }) {
                throw ValidationError(
                    "\(pulled.reference) was pulled from a registry, not built: kiln pushes only its own images "
                        + "(use `kiln copy` to move someone else's image between registries)")
            }
            if name.contains(":") && !name.hasSuffix(":") {
                guard let hit = own.first(where: { $0.reference == name }) else {
                    throw StoreError.unknownTag(reference: name, layout: layout.root, known: own.map(\.reference))
                }
                chosen.append(hit)
                continue
            }
            let group = own.filter { $0.name == name }
            guard !group.isEmpty else {
                throw StoreError.unknownTag(reference: name, layout: layout.root, known: own.map(\.reference))
            }
            chosen += allTags ? group : try current(of: group, name: name)
        }
        if names.isEmpty {
            for (name, group) in Dictionary(grouping: own, by: \.name).sorted(by: { $0.key < $1.key }) {
                chosen += allTags ? group : try current(of: group, name: name)
            }
        }
        var seen = Set<String>()
        return chosen.filter { seen.insert($0.reference).inserted }
    }

    /// The newest version tag of one image and the tags that name the same content.
    static func current(of group: [TaggedImage], name: String) throws -> [TaggedImage] {
        guard let newest = group.filter({ isVersion($0.tag) }).max(by: { versionLess($0.tag, $1.tag) }) else {
            throw ValidationError(
                "\(name) has no version tag (tags: \(group.map(\.tag).sorted().joined(separator: ", "))): "
                    + "name one as \(name):TAG, or give --all-tags")
        }
        // Other version tags of the same content (an unchanged image built as several versions) are not the
        // current version: only the non-version tags of that build go with it.
        return group.filter {
            $0.descriptor.digest == newest.descriptor.digest && ($0.tag == newest.tag || !isVersion($0.tag))
        }
    }

    /// Tags a build never writes: entries pulled from a registry (annotated by pull) and the
    /// `REGISTRY/NAME:sha256-…` tags of pinned bases in stores written before that annotation.
    static func isPulled(_ image: TaggedImage) -> Bool {
        image.descriptor.annotations?[OCIConversion.sourceDigestKey] != nil
            || (image.tag.hasPrefix("sha256-") && image.name.contains("/"))
    }

    static func isVersion(_ tag: String) -> Bool {
        let body = tag.hasPrefix("v") ? tag.dropFirst() : Substring(tag)
        return body.first?.isNumber == true
    }

    /// Version order: numeric fields compared as numbers, text fields as text; a pre-release (`-rc1`)
    /// sorts before its release.
    static func versionLess(_ a: String, _ b: String) -> Bool {
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
