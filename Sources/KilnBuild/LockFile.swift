import Foundation
import KilnDebian
import KilnOCI
import KilnStore

/// `recipes/kiln.lock`: every remote input's sha256 and every built image's digest. Checked in, so that a
/// build anywhere can prove (`kiln build --locked`) it used and produced exactly what the lock records.
public struct LockFile: Codable, Sendable, Equatable {
    public var lockVersion = 1
    /// url → sha256 of its content.
    public var inputs: [String: Digest] = [:]
    /// Image name → digest of its manifest or index: one per image, whatever version it is tagged with
    /// (the version is no input to any digest). Locks of earlier Kiln versions keyed `NAME:TAG`; those entries
    /// are read as the image's and replaced when the lock is next written.
    public var images: [String: Digest] = [:]
    /// `recipe/layer` → the Debian package set it resolved to, as canonical JSON values.
    public var packages: [String: [LockedPackage]] = [:]
    /// `recipe/layer` → what that set asked for when it was resolved (suite, components, architecture:
    /// packages). A plain build keeps the locked packages while this matches the recipe.
    public var packageRequests: [String: String] = [:]

    public init() {}

    enum CodingKeys: String, CodingKey { case lockVersion, inputs, images, packages, packageRequests }

    /// Locks written before `packageRequests` existed still load (their sets are resolved once more).
    /// Every digest is checked here, so a hand-edited or corrupted lock is refused on load, naming the entry,
    /// instead of failing later as a download or cache mismatch.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        lockVersion = try container.decode(Int.self, forKey: .lockVersion)
        // Digest's own decoding refuses a malformed entry, located by line, column and key.
        inputs = try container.decodeIfPresent([String: Digest].self, forKey: .inputs) ?? [:]
        images = try container.decodeIfPresent([String: Digest].self, forKey: .images) ?? [:]
        packages = try container.decodeIfPresent([String: [LockedPackage]].self, forKey: .packages) ?? [:]
        packageRequests = try container.decodeIfPresent([String: String].self, forKey: .packageRequests) ?? [:]
        for (key, pins) in packages.sorted(by: { $0.key < $1.key }) {
            for pin in pins where !Self.isSHA256Hex(pin.sha256) {
                throw DecodingError.dataCorruptedError(
                    forKey: .packages, in: container,
                    debugDescription:
                        "packages \"\(key)\" \(pin.name) \(pin.version): '\(pin.sha256)' is not a sha256 (64 lower-case hex digits)"
                )
            }
        }
    }

    static func isSHA256Hex(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// A resolved Debian package as the lock records it (name, version, architecture, sha256, filename).
    public typealias LockedPackage = PinnedPackage

    /// The lock beside the recipes: `DIR/kiln.lock` for a directory, else beside the first recipe file
    /// (`recipes/kiln.lock` by default).
    public static func path(besideRecipes paths: [String]) -> String {
        let first = paths.first ?? "recipes"
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: first, isDirectory: &isDirectory), isDirectory.boolValue {
            return first + "/kiln.lock"
        }
        let directory = (first as NSString).deletingLastPathComponent
        return (directory.isEmpty ? "." : directory) + "/kiln.lock"
    }

    /// Reads a lock file; a missing file is an empty lock.
    public static func load(_ path: String) throws -> LockFile {
        guard let data = FileManager.default.contents(atPath: path) else { return LockFile() }
        do {
            return try CanonicalJSON.decode(LockFile.self, from: data, path: path)
        } catch {
            throw BuildError.invalidLock(reason: "\(error)")
        }
    }

    /// Writes the lock (pretty, sorted keys: reviewable diffs) atomically.
    public func save(_ path: String) throws {
        var data = try CanonicalJSON.pretty(self)
        data.append(0x0A)
        try AtomicFile.write(data, to: path)
    }

    /// Human-readable differences from `other` (what `--locked` reports).
    public func differences(from other: LockFile) -> [String] {
        var lines: [String] = []
        func compare<V: Equatable>(_ label: String, _ mine: [String: V], _ theirs: [String: V], _ show: (V) -> String) {
            for key in Set(mine.keys).union(theirs.keys).sorted() {
                switch (theirs[key], mine[key]) {
                case (nil, let new?): lines.append("\(label) \(key): not in the lock, would be \(show(new))")
                case (let old?, nil): lines.append("\(label) \(key): in the lock (\(show(old))) but no longer built")
                case (let old?, let new?) where old != new:
                    lines.append("\(label) \(key): lock has \(show(old)), build gives \(show(new))")
                default: break
                }
            }
        }
        compare("input", inputs, other.inputs) { $0.description }
        compare("image", images, other.images) { $0.description }
        compare("packages", packages, other.packages) { "\($0.count) packages" }
        return lines
    }
}

extension LockFile {
    /// The digest the lock records for image `name` (an entry of an earlier lock keyed `name:TAG` counts when it
    /// is the only one).
    public func image(_ name: String) -> Digest? {
        if let digest = images[name] { return digest }
        let legacy = images.filter { $0.key.hasPrefix(name + ":") }
        return legacy.count == 1 ? legacy.first?.value : nil
    }

    /// Records image `name`'s digest, dropping its `name:TAG` entries from earlier locks.
    public mutating func record(image name: String, digest: Digest) {
        for key in images.keys where key.hasPrefix(name + ":") { images[key] = nil }
        images[name] = digest
    }
}
