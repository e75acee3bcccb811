import Foundation
import KilnOCI

/// One entry of an archive as read: the single model for input archives, `.deb` data, and layers read back
/// for verify, diff and validation. (Layers being *written* are described by `LayerEntry`, which says where
/// the content comes from.)
public struct ArchiveEntry: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// `other`: a device, FIFO or socket.
        case file, directory, symlink, hardlink, other
    }

    /// Normalised relative path: no leading `/` or `./`, no `.` or `..` components, no trailing `/`; "" is
    /// the root.
    public var path: String
    public var kind: Kind
    public var size: Int64
    /// Permission bits, including setuid, setgid and sticky.
    public var mode: UInt32
    public var uid: Int64
    public var gid: Int64
    /// A symlink's target as stored, or the normalised path a hard link points at.
    public var linkTarget: String?
    /// sha256 of a regular file's content, when the reader was asked to hash (`LayerReader.files`).
    public var contentDigest: Digest?
    public var mtime: Int64

    public init(
        path: String, kind: Kind, size: Int64 = 0, mode: UInt32 = 0, uid: Int64 = 0, gid: Int64 = 0,
        linkTarget: String? = nil, contentDigest: Digest? = nil, mtime: Int64 = 0
    ) {
        self.path = path
        self.kind = kind
        self.size = size
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.linkTarget = linkTarget
        self.contentDigest = contentDigest
        self.mtime = mtime
    }

    /// What differs from `other` (same path), as `field: theirs → mine` phrases.
    public func differences(from other: ArchiveEntry) -> [String] {
        var out: [String] = []
        if kind != other.kind { out.append("type \(other.kind.rawValue) → \(kind.rawValue)") }
        if size != other.size { out.append("size \(other.size) → \(size)") }
        if mode != other.mode { out.append("mode \(String(other.mode, radix: 8)) → \(String(mode, radix: 8))") }
        if uid != other.uid || gid != other.gid { out.append("owner \(other.uid):\(other.gid) → \(uid):\(gid)") }
        if linkTarget != other.linkTarget {
            out.append("link \(other.linkTarget ?? "-") → \(linkTarget ?? "-")")
        }
        if contentDigest != other.contentDigest {
            out.append(
                "content \(other.contentDigest.map { String($0.encoded.prefix(12)) } ?? "-") → "
                    + (contentDigest.map { String($0.encoded.prefix(12)) } ?? "-"))
        }
        if mtime != other.mtime { out.append("mtime \(other.mtime) → \(mtime)") }
        return out
    }
}

/// A layer's entry as read back (verify, diff): the archive entry model with its content digest.
public typealias LayerFile = ArchiveEntry

/// What an archive may contain, by where it comes from. Every policy refuses `..` components, names that are
/// not UTF-8, names deeper or longer than a filesystem takes, and hard links leaving the root.
public enum ArchivePolicy: Sendable {
    /// A recipe's input archive: also refuses absolute member names, symlinks whose target is absolute or
    /// climbs out of the archive, devices and FIFOs, and `.wh.` names.
    case input
    /// A `.deb`'s data: absolute names are taken as relative (dpkg does the same), symlink targets are kept
    /// as they are (they resolve inside the image), devices and FIFOs are refused, and so are `.wh.` names.
    case package
    /// An image layer: whiteouts and absolute symlink targets are normal; absolute member names and
    /// relative symlinks climbing above the root are refused; devices are reported (`.other`).
    case layer
}

/// Limits for names read from archives (a 2,000-deep path is refused before anything is written).
public enum ArchiveLimits {
    public static let maxPathBytes = 4095
    public static let maxComponentBytes = 255
    public static let maxDepth = 256
}

/// How much an archive may expand: total bytes, and bytes per compressed byte once past `ratioFloor`.
public struct ExpansionLimit: Sendable, Hashable {
    public var maxBytes: Int64
    public var maxRatio: Int64
    /// Below this many expanded bytes the ratio is not checked (small, highly compressible archives).
    public var ratioFloor: Int64

    public init(maxBytes: Int64, maxRatio: Int64 = 200, ratioFloor: Int64 = 64 << 20) {
        self.maxBytes = maxBytes
        self.maxRatio = maxRatio
        self.ratioFloor = ratioFloor
    }

    /// 8 GiB and 200:1: far above any release archive Kiln builds from, far below a bomb.
    public static let inputs = ExpansionLimit(maxBytes: 8 << 30)
    /// No limit: content that was verified against a signed index or a digest chosen by the user.
    public static let none = ExpansionLimit(maxBytes: .max, maxRatio: .max, ratioFloor: .max)
}
