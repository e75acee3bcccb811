import Foundation
import KilnDebian
import KilnLayer
import KilnOCI

/// The plan key of a layer: sha256 over everything that determines its bytes, known from the plan alone
/// (entries as written, url inputs by their pinned sha256 and placement, .debs by the lock's pins, build outputs
/// by their step's compile key), and local files by the digests prepare folds in (they are in the checkout and
/// cheap to hash). A layer with such a key is looked up before prepare fetches anything, so a runner with the
/// cache needs none of its inputs. A layer whose bytes depend on something only prepare fetches (an unpinned url
/// input, a package set not in the lock, a step keyed by a `dir:` source) has no plan key and is keyed from its
/// content (`Builder.cacheKey`) as it is written.
enum LayerKeys {
    /// Bumped when what KilnDebian makes of a .deb changes (its entries, the dpkg status database, post-install
    /// files) without the .deb changing: layers keyed by their pins are not rebuilt otherwise.
    static let debianUnpackVersion = 1

    /// What the plan says of one content, as keyed.
    struct Content: Encodable {
        var kind: String
        var path: String?
        var value: String?
        var mode: UInt32?
        var uid: Int?
        var gid: Int?
        var extract: [String]?
        var unpackLimit: Int64?
        var packages: [String]?
        /// The platform whose binaries the foreign-binary check accepted; nil when the check is off
        /// (`--allow-foreign-binaries`) or the content is not checked.
        var checkedFor: String?
    }

    /// The key's document. Its members differ from the content key's (`Builder.cacheKey`: `entries`, no `plan`),
    /// so a plan key never equals a content key.
    struct Key: Encodable {
        var plan = "layer"
        var encoding: Int
        var debianUnpack = LayerKeys.debianUnpackVersion
        var compression: String
        var mtime: Int64
        var contents: [Content]
    }

    /// The plan key of `contents`, or nil when the plan alone does not determine their bytes. `pins` are the
    /// package sets as locked (by lock key), `builds` the steps' compile keys (by `recipe/build`).
    static func planKey(
        _ contents: [LayerContent], platform: String, compression: LayerCompression, mtime: Int64,
        allowForeignBinaries: Bool, pins: [String: [PinnedPackage]], builds: [String: String],
        encoding: Int = Encoding.version
    ) -> Digest? {
        guard !contents.isEmpty else { return nil }
        let checked = allowForeignBinaries ? nil : platform
        var keyed: [Content] = []
        for content in contents {
            switch content {
            case .entry(let entry):
                guard let entry = LayerKeys.content(entry, fileDigest: nil) else { return nil }
                keyed.append(entry)
            case .download(let url, let digest, let extract, let placement):
                guard let digest else { return nil }
                keyed.append(
                    Content(
                        kind: "download " + url, path: placement.to, value: digest.description,
                        mode: placement.ownership.mode, uid: placement.ownership.uid, gid: placement.ownership.gid,
                        extract: extract, unpackLimit: placement.unpackLimit, checkedFor: checked))
            case .debs(let set, _):
                guard let pinned = pins[set], !pinned.isEmpty else { return nil }
                keyed.append(Content(kind: "debs", packages: pinned.map(line).sorted()))
            case .package(let set, let name, _):
                guard let pin = pins[set]?.first(where: { $0.name == name }) else { return nil }
                keyed.append(Content(kind: "package", packages: [line(pin)]))
            case .buildOutput(let build, _, let path, let placement):
                guard let key = builds[build] else { return nil }
                keyed.append(
                    Content(
                        kind: "build-output " + key, path: placement.to, value: path, mode: placement.ownership.mode,
                        uid: placement.ownership.uid, gid: placement.ownership.gid, checkedFor: checked))
            case .files(let files, _):
                // The add's entries with their content digests, as prepare found them (`keyLocalFiles`).
                guard let digest = files.digest else { return nil }
                keyed.append(Content(kind: "files", value: digest.description, checkedFor: checked))
            }
        }
        let key = Key(encoding: encoding, compression: compression.rawValue, mtime: mtime, contents: keyed)
        return (try? CanonicalJSON.encode(key)).map(Digest.sha256)
    }

    /// An entry as keyed: its path, kind, content (a file's digest: of its bytes, or `fileDigest` for a file on
    /// disk, nil when unknown), mode and owner.
    static func content(_ entry: LayerEntry, fileDigest: Digest?) -> Content? {
        struct UnknownDigest: Error {}
        guard
            let keyed = try? entry.keyed(fileDigest: { _ in
                guard let fileDigest else { throw UnknownDigest() }
                return fileDigest
            })
        else { return nil }
        return Content(
            kind: keyed.kind, path: entry.path, value: keyed.value, mode: entry.mode, uid: entry.uid, gid: entry.gid)
    }

    /// The digest of a local `add`'s entries (paths in the image, modes, owners, each file's content digest from
    /// `digests`), or nil when a file is unreadable or, without `hashUnknown`, was never hashed in this store
    /// (its layer is then keyed from its content as it is written, so a first build reads each file once).
    static func localDigest(_ files: LocalFiles, _ placement: Placement, digests: FileDigests, hashUnknown: Bool)
        -> Digest?
    {
        guard
            let entries = try? LocalSources.entries(
                matching: files.paths, isGlob: files.isGlob, destination: placement.to,
                mode: placement.ownership.mode, uid: placement.ownership.uid, gid: placement.ownership.gid)
        else { return nil }
        var keyed: [Content] = []
        for entry in entries {
            var fileDigest: Digest?
            if case .file(.path(let path)) = entry.kind {
                guard hashUnknown || digests.knows(path), let digest = try? digests.digest(ofFileAt: path) else {
                    return nil
                }
                fileDigest = digest
            }
            guard let content = content(entry, fileDigest: fileDigest) else { return nil }
            keyed.append(content)
        }
        return (try? CanonicalJSON.encode(keyed)).map(Digest.sha256)
    }

    /// A pin as keyed: what the .deb is (its sha256) and what the status database records of it.
    static func line(_ pin: PinnedPackage) -> String {
        "\(pin.name) \(pin.version) \(pin.architecture) \(pin.sha256)"
    }
}

extension BuildPlan {
    /// Folds the layers' local files into their plan keys: prepare's part of keying, since the files are in
    /// the checkout and cheap to hash (by `digests`, which knows them by their stamps). See `localDigest`.
    mutating func keyLocalFiles(_ digests: FileDigests, hashUnknown: Bool) {
        for i in images.indices {
            for p in images[i].platforms.indices {
                for l in images[i].platforms[p].layers.indices {
                    for (c, content) in images[i].platforms[p].layers[l].contents.enumerated() {
                        guard case .files(var files, let placement) = content else { continue }
                        files.digest = LayerKeys.localDigest(
                            files, placement, digests: digests, hashUnknown: hashUnknown)
                        images[i].platforms[p].layers[l].contents[c] = .files(files, placement)
                    }
                }
            }
        }
        keyLayers()
    }

    /// Keys the build steps whose environment was resolved by prepare (not in the lock when planning) and whose
    /// sources are all pinned by content, as compile will: their output layers then get a plan key too, so the
    /// runner that resolved the set publishes them under the key the next runner (with the lock) looks up.
    mutating func keyBuilds() {
        for index in builds.indices where builds[index].key == nil {
            let build = builds[index]
            guard let spec = build.spec, let sources = build.pinnedSources,
                let packages = packageSets.first(where: { $0.key == build.environment })?.packages
            else { continue }
            builds[index].key = Pipeline.compileKey(spec, environment: packages, sources: sources, options: options)
        }
    }

    /// Sets every planned layer's plan key (`LayerKeys.planKey`), or clears it where the plan does not determine
    /// the layer. The one place plan keys are computed: planning calls it, and so does settling split sets.
    mutating func keyLayers() {
        var pins: [String: [PinnedPackage]] = [:]
        for set in packageSets { pins[set.key] = set.packages }
        var compiled: [String: String] = [:]
        for build in builds { compiled[build.id] = build.key }
        for i in images.indices {
            let compression = options.compression ?? images[i].job.compression ?? .gzip
            for p in images[i].platforms.indices {
                let platform = images[i].platforms[p].platform
                for l in images[i].platforms[p].layers.indices {
                    let layer = images[i].platforms[p].layers[l]
                    images[i].platforms[p].layers[l].key =
                        layer.pending == true
                        ? nil
                        : LayerKeys.planKey(
                            layer.contents, platform: platform, compression: compression,
                            mtime: options.sourceDateEpoch, allowForeignBinaries: options.allowForeignBinaries,
                            pins: pins, builds: compiled)?.encoded
                }
            }
        }
    }
}

extension LayerEntry {
    /// How both layer keys (the content key's `entries`, the plan key's `contents`) name an entry: its kind, and
    /// its content as a string (a file by its content's digest, which `fileDigest` gives for a file on disk).
    func keyed(fileDigest: (String) throws -> Digest) rethrows -> (kind: String, value: String) {
        switch kind {
        case .directory: return ("dir", "")
        case .symlink(let target): return ("symlink", target)
        case .hardlink(let target): return ("hardlink", target)
        case .file(.bytes(let data)): return ("file", Digest.sha256(data).description)
        case .file(.path(let path)): return ("file", try fileDigest(path).description)
        }
    }
}
