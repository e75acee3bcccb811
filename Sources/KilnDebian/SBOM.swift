import Foundation
import KilnOCI

/// An SPDX 2.3 JSON document listing an image's Debian packages and the files it was built from by URL (each
/// with the sha256 Kiln verified), written deterministically (sorted entries, canonical JSON, the build's fixed
/// timestamp) so the same image always gets the same SBOM digest.
public enum SBOM {
    public static let mediaType = "application/spdx+json"

    /// One package as the SBOM lists it.
    public struct Package: Sendable, Hashable {
        public var name: String
        public var version: String
        public var architecture: String
        public var sha256: String
        public var source: String
        /// The URL the .deb was downloaded from.
        public var downloadLocation: String

        public init(
            name: String, version: String, architecture: String, sha256: String, source: String,
            downloadLocation: String
        ) {
            self.name = name
            self.version = version
            self.architecture = architecture
            self.sha256 = sha256
            self.source = source
            self.downloadLocation = downloadLocation
        }

        /// `pkg:deb/debian/NAME@VERSION?arch=ARCH`, the version percent-encoded (epochs have a `:`).
        public var purl: String {
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: ".-_~")
            let version = version.addingPercentEncoding(withAllowedCharacters: allowed) ?? version
            return "pkg:deb/debian/\(name)@\(version)?arch=\(architecture)"
        }

        var spdxID: String {
            let safe = "\(name)-\(architecture)".map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "-" }
            return SBOM.debianIDPrefix + String(safe)
        }
    }

    /// One `url` input of the image: a downloaded file, verified against its sha256 before use.
    public struct Download: Sendable, Hashable {
        public var url: String
        public var sha256: String
        /// The members taken out of it (`extract:`), nil when the file itself was added.
        public var members: [String]?

        public init(url: String, sha256: String, members: [String]?) {
            self.url = url
            self.sha256 = sha256
            self.members = members
        }

        var name: String { (url as NSString).lastPathComponent }
        var spdxID: String { "SPDXRef-Download-" + Digest.sha256(Data(url.utf8)).encoded.prefix(16) }
    }

    /// A build step's source that was compiled into the image: a git commit (with its tree id) or an archive
    /// checked against its sha256.
    public struct Source: Sendable, Hashable {
        public var name: String
        /// SPDX's form: `git+URL@COMMIT` for a git source, the URL for an archive.
        public var downloadLocation: String
        /// The commit of a git source; nil for an archive.
        public var version: String?
        /// An archive's sha256 (a git commit id is not a checksum of a file, so git sources have none).
        public var sha256: String?
        public var note: String

        public static func git(name: String, url: String, commit: String, tree: String?) -> Source {
            Source(
                name: name, downloadLocation: "git+\(url)@\(commit)", version: commit, sha256: nil,
                note: "compiled from git commit \(commit)" + (tree.map { ", tree \($0)" } ?? ""))
        }

        public static func archive(name: String, url: String, sha256: String) -> Source {
            Source(
                name: name, downloadLocation: url, version: nil, sha256: sha256,
                note: "compiled from this archive, sha256 verified")
        }

        var spdxID: String { "SPDXRef-Source-" + Digest.sha256(Data(downloadLocation.utf8)).encoded.prefix(16) }
    }

    /// Debian packages' SPDX ids start so; `kiln inspect` lists only these as packages.
    public static let debianIDPrefix = "SPDXRef-Package-deb-"

    struct Document: Encodable {
        var spdxVersion = "SPDX-2.3"
        var dataLicense = "CC0-1.0"
        var SPDXID = "SPDXRef-DOCUMENT"
        var name: String
        var documentNamespace: String
        var creationInfo: CreationInfo
        var packages: [Entry]
        var relationships: [RelationshipEntry]
    }

    struct CreationInfo: Encodable {
        var created: String
        var creators = ["Tool: kiln-\(KilnVersion.current)"]
    }

    struct Entry: Encodable {
        var SPDXID: String
        var name: String
        var versionInfo: String?
        var downloadLocation: String
        var filesAnalyzed = false
        var supplier = "NOASSERTION"
        var licenseConcluded = "NOASSERTION"
        var licenseDeclared = "NOASSERTION"
        var copyrightText = "NOASSERTION"
        var sourceInfo: String
        var checksums: [Checksum]?
        var externalRefs: [ExternalRef]?
    }

    struct Checksum: Encodable {
        var algorithm = "SHA256"
        var checksumValue: String
    }

    struct ExternalRef: Encodable {
        var referenceCategory = "PACKAGE-MANAGER"
        var referenceType = "purl"
        var referenceLocator: String
    }

    struct RelationshipEntry: Encodable {
        var spdxElementId = "SPDXRef-DOCUMENT"
        var relationshipType = "DESCRIBES"
        var relatedSpdxElement: String
    }

    /// The document for `image` (e.g. `NAME:TAG`), dated `created` (RFC 3339).
    public static func document(
        image: String, packages: [Package], downloads: [Download] = [], sources: [Source] = [], created: String
    ) throws -> Data {
        let sorted = Array(Set(packages)).sorted { ($0.name, $0.architecture) < ($1.name, $1.architecture) }
        let files = Array(Set(downloads)).sorted { ($0.url, $0.sha256) < ($1.url, $1.sha256) }
        let compiled = Array(Set(sources)).sorted { ($0.downloadLocation, $0.name) < ($1.downloadLocation, $1.name) }
        // The namespace must be unique per document: derive it from the content, which also keeps it stable.
        let content =
            sorted.map { "\($0.name) \($0.version) \($0.architecture) \($0.sha256)" }
            + files.map { "\($0.url) \($0.sha256) \(($0.members ?? []).joined(separator: ","))" }
            + compiled.map { "\($0.name) \($0.downloadLocation) \($0.sha256 ?? "")" }
        let digest = Digest.sha256(Data(([image] + content).joined(separator: "\n").utf8)).encoded
        let entries =
            sorted.map { package in
                Entry(
                    SPDXID: package.spdxID, name: package.name, versionInfo: package.version,
                    downloadLocation: package.downloadLocation, sourceInfo: "built package from: \(package.source)",
                    checksums: [Checksum(checksumValue: package.sha256)],
                    externalRefs: [ExternalRef(referenceLocator: package.purl)])
            }
            + files.map { file in
                Entry(
                    SPDXID: file.spdxID, name: file.name, versionInfo: nil, downloadLocation: file.url,
                    sourceInfo: file.members.map {
                        "downloaded, sha256 verified; extracted: \($0.joined(separator: ", "))"
                    }
                        ?? "downloaded, sha256 verified",
                    checksums: [Checksum(checksumValue: file.sha256)], externalRefs: nil)
            }
            + compiled.map { source in
                Entry(
                    SPDXID: source.spdxID, name: source.name, versionInfo: source.version,
                    downloadLocation: source.downloadLocation, sourceInfo: source.note,
                    checksums: source.sha256.map { [Checksum(checksumValue: $0)] }, externalRefs: nil)
            }
        return try CanonicalJSON.encode(
            Document(
                name: image, documentNamespace: "https://spdx.org/spdxdocs/kiln-\(digest)",
                creationInfo: CreationInfo(created: created), packages: entries,
                relationships: entries.map { RelationshipEntry(relatedSpdxElement: $0.SPDXID) }))
    }
}
