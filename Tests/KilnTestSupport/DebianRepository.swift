import Foundation
import KilnOCI

/// A signed Debian repository made at test time from packages built with `dpkg-deb`, served over HTTP on
/// 127.0.0.1 by `python3 -m http.server`. The signing key is a throwaway made in a private GNUPGHOME.
public final class DebianRepository: @unchecked Sendable {
    /// A package to build: control fields and files (path → content; a leading `x:` marks it executable).
    public struct Package: Sendable {
        public var name: String
        public var version: String
        public var architecture: String
        public var fields: [String: String]
        public var files: [String: String]
        public var symlinks: [String: String]
        /// Hard link path → existing file path.
        public var hardlinks: [String: String]

        public init(
            _ name: String, _ version: String, architecture: String = "amd64", fields: [String: String] = [:],
            files: [String: String]? = nil, symlinks: [String: String] = [:], hardlinks: [String: String] = [:]
        ) {
            self.name = name
            self.version = version
            self.architecture = architecture
            self.fields = fields
            self.files = files ?? ["/usr/share/kiln-test/\(name).txt": "\(name) \(version)\n"]
            self.symlinks = symlinks
            self.hardlinks = hardlinks
        }
    }

    public let directory: TemporaryDirectory
    public let suite: String
    public var root: String { directory.path + "/repo" }
    public var keyring: String { directory.path + "/keyring.gpg" }
    /// The same key, ASCII-armoured.
    public var armouredKeyring: String { directory.path + "/keyring.asc" }
    public var gnupgHome: String { directory.path + "/gnupg" }
    public private(set) var server: BackgroundProcess?
    public private(set) var port = 0
    public var url: String { "http://127.0.0.1:\(port)" }

    public init(suite: String = "kilntest", packages: [Package]) throws {
        directory = try TemporaryDirectory("kiln-deb")
        self.suite = suite
        try FileManager.default.createDirectory(atPath: gnupgHome, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: gnupgHome)
        try gpg(["--quick-gen-key", "Kiln Test <test@kiln.invalid>", "ed25519", "sign", "never"])
        try Shell.run(["sh", "-c", "gpg --batch --export > '\(keyring)'"], environment: ["GNUPGHOME": gnupgHome])
        try Shell.run(
            ["sh", "-c", "gpg --batch --armor --export > '\(armouredKeyring)'"], environment: ["GNUPGHOME": gnupgHome])
        for package in packages { try add(package) }
        try index()
    }

    func gpg(_ arguments: [String]) throws {
        try Shell.run(
            ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", ""] + arguments,
            environment: ["GNUPGHOME": gnupgHome])
    }

    /// Builds a .deb with dpkg-deb (root-owned files) into `pool/main/`.
    public func add(_ package: Package) throws {
        let build = directory.path + "/build/\(package.name)_\(package.version)"
        try FileManager.default.createDirectory(atPath: build + "/DEBIAN", withIntermediateDirectories: true)
        var control = """
            Package: \(package.name)
            Version: \(package.version)
            Architecture: \(package.architecture)
            Maintainer: Kiln Tests <test@kiln.invalid>
            Description: test package \(package.name)
             built by the Kiln test suite.

            """
        for (key, value) in package.fields.sorted(by: { $0.key < $1.key }) { control += "\(key): \(value)\n" }
        try control.write(toFile: build + "/DEBIAN/control", atomically: true, encoding: .utf8)
        for (path, content) in package.files {
            let executable = content.hasPrefix("x:")
            let full = build + path
            try FileManager.default.createDirectory(
                atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try String(content.dropFirst(executable ? 2 : 0)).write(toFile: full, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: executable ? 0o755 : 0o644], ofItemAtPath: full)
        }
        for (path, target) in package.symlinks {
            let full = build + path
            try FileManager.default.createDirectory(
                atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: full, withDestinationPath: target)
        }
        for (path, target) in package.hardlinks {
            try FileManager.default.linkItem(atPath: build + target, toPath: build + path)
        }
        try Shell.run(["chmod", "-R", "go-w", build])
        let pool = root + "/pool/main"
        try FileManager.default.createDirectory(atPath: pool, withIntermediateDirectories: true)
        try Shell.run([
            "dpkg-deb", "--root-owner-group", "-Zxz", "--build", build,
            pool + "/\(package.name)_\(package.version)_\(package.architecture).deb",
        ])
    }

    /// Packages (plain and xz), Release, and InRelease clear-signed with the repository key.
    public func index(sign: Bool = true) throws {
        let dists = root + "/dists/\(suite)"
        let binary = dists + "/main/binary-amd64"
        try FileManager.default.createDirectory(atPath: binary, withIntermediateDirectories: true)
        try Shell.run(
            ["sh", "-c", "apt-ftparchive packages pool > dists/\(suite)/main/binary-amd64/Packages"], directory: root)
        try Shell.run(["xz", "-kf", binary + "/Packages"])
        try? FileManager.default.removeItem(atPath: dists + "/Release")
        try? FileManager.default.removeItem(atPath: dists + "/InRelease")
        try Shell.run(
            [
                "sh", "-c",
                "apt-ftparchive -o APT::FTPArchive::Release::Suite=\(suite) -o APT::FTPArchive::Release::Codename=\(suite) -o APT::FTPArchive::Release::Architectures=amd64 -o APT::FTPArchive::Release::Components=main release dists/\(suite) > '\(directory.path)/Release' && mv '\(directory.path)/Release' dists/\(suite)/Release",
            ], directory: root)
        if sign {
            try gpg(["--clearsign", "--output", dists + "/InRelease", dists + "/Release"])
        } else {
            try FileManager.default.copyItem(atPath: dists + "/Release", toPath: dists + "/InRelease")
        }
    }

    /// Re-signs InRelease with a new key that is not in `keyring`.
    public func signWithStrangerKey() throws {
        let stranger = directory.path + "/stranger"
        try FileManager.default.createDirectory(atPath: stranger, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: stranger)
        let dists = root + "/dists/\(suite)"
        let env = ["GNUPGHOME": stranger]
        let base = ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
        try Shell.run(
            base + ["--quick-gen-key", "Stranger <x@kiln.invalid>", "ed25519", "sign", "never"], environment: env)
        try? FileManager.default.removeItem(atPath: dists + "/InRelease")
        try Shell.run(base + ["--clearsign", "--output", dists + "/InRelease", dists + "/Release"], environment: env)
        _ = try? Shell.run(["gpgconf", "--kill", "gpg-agent"], environment: env, check: false)
    }

    /// Path of a built .deb in the pool.
    public func debPath(_ name: String, _ version: String, architecture: String = "amd64") -> String {
        root + "/pool/main/\(name)_\(version)_\(architecture).deb"
    }

    /// sha256 of `data` as lower-case hex, as Packages files and the lock write it.
    public static func sha256Hex(_ data: Data) -> String { Digest.sha256(data).encoded }

    public func serve() throws {
        port = try freePort()
        server = try BackgroundProcess(
            ["python3", "-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", root],
            log: directory.path + "/http.log")
        try waitForPort(port)
    }

    /// The GET requests served so far, from the server's log.
    public var requests: [String] {
        (server?.log ?? "").split(separator: "\n").filter { $0.contains("\"GET ") }.map(String.init)
    }

    public func stop() {
        server?.stop()
        _ = try? Shell.run(["gpgconf", "--kill", "gpg-agent"], environment: ["GNUPGHOME": gnupgHome], check: false)
        directory.remove()
    }
}
