import Foundation
import KilnOCI

/// Reads image layers (tar, plain or under any compression libarchive detects) through `ArchiveReader`.
public enum LayerReader {
    /// Every entry of the layer at `path`, in archive order, with each regular file's content hashed.
    public static func files(at path: String) throws -> [LayerFile] {
        try files(ArchiveReader(path: path, format: .tar, policy: .layer))
    }

    /// The same for a stored blob, whose digest is checked as it is read (a tampered store is refused).
    public static func files(at path: String, expected: Digest) throws -> [LayerFile] {
        try files(ArchiveReader(blob: path, expected: expected, format: .tar, policy: .layer))
    }

    static func files(_ reader: ArchiveReader) throws -> [LayerFile] {
        var result: [LayerFile] = []
        while var file = try reader.next() {
            if file.kind == .file {
                var hasher = SHA256()
                try reader.readContent { hasher.update($0) }
                file.contentDigest = hasher.finalize()
            }
            result.append(file)
        }
        return result
    }

    /// What a layer from a registry may not contain before Kiln builds on it, beyond what `ArchivePolicy.layer`
    /// refuses while reading (`..`, absolute names, relative symlinks climbing out, hard links out).
    public struct Validation: Sendable {
        /// Devices, FIFOs and sockets: a build never needs them and a runtime creates its own `/dev`.
        public var allowDevices = false
        /// Setuid and setgid files. Allowed by default: Debian's base images ship `su`, `passwd` and `mount`
        /// setuid, and refusing them would refuse every such base. Set false for a stricter pull.
        public var allowSetuid = true

        public init(allowDevices: Bool = false, allowSetuid: Bool = true) {
            self.allowDevices = allowDevices
            self.allowSetuid = allowSetuid
        }
    }

    /// Reads the whole layer at `path` (named `name` in errors, e.g. the registry reference and digest) and
    /// throws on the first entry a build must not start from. Returns the number of entries.
    @discardableResult
    public static func validate(at path: String, name: String? = nil, rules: Validation = Validation()) throws -> Int {
        let reader = try ArchiveReader(path: path, name: name, format: .tar, policy: .layer)
        return try validate(reader, name: name ?? path, rules: rules)
    }

    static func validate(_ reader: ArchiveReader, name: String, rules: Validation) throws -> Int {
        var count = 0
        while let entry = try reader.next() {
            count += 1
            if entry.kind == .other && !rules.allowDevices {
                throw LayerError.archive(
                    path: name, reason: "layer entry '/\(entry.path)' is a device, FIFO or socket; refusing the layer")
            }
            if entry.mode & 0o6000 != 0 && entry.kind == .file && !rules.allowSetuid {
                throw LayerError.archive(
                    path: name,
                    reason:
                        "layer entry '/\(entry.path)' is setuid or setgid (mode \(String(entry.mode, radix: 8))); refusing the layer"
                )
            }
        }
        return count
    }

    /// Differences between two layers' entries: one line per path that was added, removed or changed,
    /// sorted by path. Change phrases read `theirs → mine`; `mineLabel`/`theirsLabel` name the two sides.
    public static func compare(
        _ mine: [LayerFile], _ theirs: [LayerFile], mineLabel: String = "rebuilt", theirsLabel: String = "published"
    ) -> [String] {
        let a = Dictionary(mine.map { ($0.path, $0) }, uniquingKeysWith: { _, last in last })
        let b = Dictionary(theirs.map { ($0.path, $0) }, uniquingKeysWith: { _, last in last })
        var lines: [String] = []
        for path in Set(a.keys).union(b.keys).sorted(by: LayerPath.precedes) {
            switch (a[path], b[path]) {
            case (.some, nil): lines.append("+ /\(path) (only in the \(mineLabel) layer)")
            case (nil, .some): lines.append("- /\(path) (only in the \(theirsLabel) layer)")
            case (let x?, let y?):
                let changes = x.differences(from: y)
                if !changes.isEmpty { lines.append("~ /\(path): \(changes.joined(separator: ", "))") }
            default: break
            }
        }
        return lines
    }
}
