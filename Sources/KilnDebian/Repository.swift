import Foundation
import KilnHTTP
import KilnStore

#if canImport(Glibc)
    import Glibc
#endif

/// A signed Debian repository at a mirror: `dists/SUITE/InRelease` verified with gpgv, then the Packages
/// indexes it lists, each checked against the size and SHA256 the verified Release gives.
public struct Repository: Sendable {
    public let mirror: String
    public let suite: String
    public let keyring: String
    public let cache: DownloadCache

    public init(mirror: String, suite: String, keyring: String, cache: DownloadCache) {
        self.mirror = mirror.hasSuffix("/") ? String(mirror.dropLast()) : mirror
        self.suite = suite
        self.keyring = keyring
        self.cache = cache
    }

    /// A file listed in the Release, with its expected size and SHA256.
    public struct IndexFile: Sendable, Hashable {
        public var path: String
        public var size: Int64
        public var sha256: String
    }

    /// Fetches and verifies InRelease; returns the SHA256 list of the signed Release body. `step` hears each
    /// stage that may take a while (download, signature check), as a short present-tense line.
    public func release(transport: HTTPTransport, step: @Sendable (String) -> Void = { _ in }) async throws
        -> [String: IndexFile]
    {
        let url = "\(mirror)/dists/\(suite)/InRelease"
        step("downloading \(suite) InRelease from \(mirror)")
        guard let target = URL(string: url) else { throw DebianError.release(url: url, detail: "not a URL") }
        let response: HTTPResponse
        do {
            response = try await transport.send(HTTPRequest(.GET, target), limit: 64 << 20)
        } catch {
            throw DebianError.release(url: url, detail: "\(error)")
        }
        guard response.status == 200 else {
            throw DebianError.release(
                url: url,
                detail:
                    "HTTP \(response.status): the mirror does not serve suite '\(suite)' (Kiln needs a signed InRelease)"
            )
        }
        step("verifying the signature of \(suite) InRelease")
        let body = try verify(response.body, url: url)
        guard let release = Control.parse(body).first else {
            throw DebianError.release(url: url, detail: "the signed Release is empty")
        }
        // A validly signed Release of another suite must not stand in for this one (a replayed file).
        guard release["Suite"] == suite || release["Codename"] == suite else {
            throw DebianError.release(
                url: url,
                detail:
                    "signed Release is for suite '\(release["Suite"] ?? "?")' (codename '\(release["Codename"] ?? "?")'), not '\(suite)'"
            )
        }
        return Self.sha256Files(release["SHA256"] ?? "")
    }

    /// `gpgv --keyring KEYRING --output BODY`: the body is what the signature covers and nothing else, so
    /// text outside the signed part of the file can never reach the parser. No good signature → error.
    func verify(_ signed: Data, url: String) throws -> Data {
        guard FileManager.default.isReadableFile(atPath: keyring) else {
            throw DebianError.signature(url: url, detail: "keyring \(keyring) does not exist or is unreadable")
        }
        try FileManager.default.createDirectory(atPath: cache.root + "/tmp", withIntermediateDirectories: true)
        let base = cache.root + "/tmp/inrelease-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer {
            unlink(base)
            unlink(base + ".body")
        }
        try signed.write(to: URL(fileURLWithPath: base))
        // gpgv reads binary keyrings only; an ASCII-armoured one (`.asc`, common in /etc/apt/keyrings) is
        // decoded to a temporary binary copy first.
        var keyringPath = keyring
        if let armoured = FileManager.default.contents(atPath: keyring), let binary = Self.dearmour(armoured) {
            keyringPath = base + ".keyring.gpg"
            try binary.write(to: URL(fileURLWithPath: keyringPath))
        }
        defer { if keyringPath != keyring { unlink(keyringPath) } }
        let result = try Subprocess.run(
            ["gpgv", "--quiet", "--keyring", keyringPath, "--output", base + ".body", base], in: cache.root + "/tmp")
        guard result.status == 0, let body = FileManager.default.contents(atPath: base + ".body") else {
            let detail = result.output.split(separator: "\n").filter { !$0.isEmpty }.suffix(3).joined(separator: "; ")
            throw DebianError.signature(url: url, detail: detail.isEmpty ? "gpgv exited \(result.status)" : detail)
        }
        return body
    }

    /// The packets of an ASCII-armoured OpenPGP key block (RFC 4880 §6.2), or nil when `data` is not armoured.
    /// Several blocks are concatenated. The CRC line is dropped: gpgv checks the keys' own signatures.
    static func dearmour(_ data: Data) -> Data? {
        guard let text = String(data: data, encoding: .utf8), text.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----")
        else { return nil }
        var result = Data()
        var body: String?
        var inHeaders = false
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if line.hasPrefix("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
                body = ""
                inHeaders = true
            } else if line.hasPrefix("-----END PGP PUBLIC KEY BLOCK-----") {
                guard let encoded = body, let packets = Data(base64Encoded: encoded) else { return nil }
                result.append(packets)
                body = nil
            } else if body != nil {
                // Armour headers (`Comment: …`) run up to a blank line; tolerate a block without that line.
                if inHeaders && line.contains(": ") { continue }
                inHeaders = false
                if !line.isEmpty && !line.hasPrefix("=") { body! += line }
            }
        }
        return result.isEmpty ? nil : result
    }

    /// ` <sha256> <size> <path>` lines.
    static func sha256Files(_ text: String) -> [String: IndexFile] {
        var files: [String: IndexFile] = [:]
        for line in text.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count == 3, let size = Int64(words[1]) else { continue }
            files[String(words[2])] = IndexFile(path: String(words[2]), size: size, sha256: words[0].lowercased())
        }
        return files
    }

    /// Every binary package of `components` for `architecture`, from indexes verified against the Release.
    /// `step` hears each stage (download, verification, parsing) as it starts.
    public func packages(
        components: [String], architecture: String, transport: HTTPTransport,
        step: @Sendable (String) -> Void = { _ in }
    ) async throws -> [BinaryPackage] {
        let files = try await release(transport: transport, step: step)
        var result: [BinaryPackage] = []
        for component in components {
            let stem = "\(component)/binary-\(architecture)/Packages"
            guard let file = [".xz", ".gz", ".zst", ""].lazy.compactMap({ files[stem + $0] }).first else {
                throw DebianError.index(
                    url: "\(mirror)/dists/\(suite)/\(stem)",
                    detail: "the signed Release lists no Packages index for \(component)/\(architecture)")
            }
            let url = "\(mirror)/dists/\(suite)/\(file.path)"
            step("downloading and verifying \(suite)/\(file.path) (\(Self.megabytes(file.size)))")
            let path: String
            do {
                path = try await cache.fetchFile(url: url, sha256: file.sha256, size: file.size, transport: transport)
            } catch DebianError.download(_, let detail) {
                throw DebianError.index(url: url, detail: detail)
            }
            step("reading \(suite)/\(file.path)")
            let data = try DebArchive.decompress(path: path)
            for stanza in Control.parse(data, keep: BinaryPackage.fields) {
                if let package = BinaryPackage(stanza) { result.append(package) }
            }
        }
        return result
    }

    static func megabytes(_ bytes: Int64) -> String {
        String(format: "%.1f MB", Double(bytes) / 1_000_000)
    }
}
