import Foundation
import KilnHTTP
import KilnLayer
import KilnOCI
import KilnStore
import Logging

/// What a recipe asks for: `packages: {suite, components, packages, mirror, keyring}` for one architecture.
public struct PackageSetRequest: Sendable, Hashable {
    public var suite: String
    public var components: [String]
    public var packages: [String]
    public var mirror: String?
    public var keyring: String?
    /// A Debian architecture (`amd64`, `arm64`, …).
    public var architecture: String

    public init(
        suite: String, components: [String], packages: [String], mirror: String? = nil, keyring: String? = nil,
        architecture: String
    ) {
        self.suite = suite
        self.components = components.isEmpty ? ["main"] : components
        self.packages = packages
        self.mirror = mirror
        self.keyring = keyring
        self.architecture = architecture
    }
}

/// One package of a resolved set: what the lock records, plus where it came from.
public struct PinnedPackage: Sendable, Hashable, Codable {
    public var name: String
    public var version: String
    public var architecture: String
    public var sha256: String
    /// Relative to the mirror root.
    public var filename: String
    /// The source package (the index's `Source:` without its version, else the binary's own name), so the SBOM
    /// needs no unpack; nil in locks written before it was recorded.
    public var source: String?

    public init(
        name: String, version: String, architecture: String, sha256: String, filename: String, source: String? = nil
    ) {
        self.name = name
        self.version = version
        self.architecture = architecture
        self.sha256 = sha256
        self.filename = filename
        self.source = source
    }
}

/// A resolved and downloaded set: every .deb is in the cache, verified.
public struct ResolvedPackageSet: Sendable {
    public var mirror: String
    public var packages: [PinnedPackage]
    public var cache: DownloadCache

    public init(mirror: String, packages: [PinnedPackage], cache: DownloadCache) {
        self.mirror = mirror
        self.packages = packages
        self.cache = cache
    }

    /// Each package unpacked (once per .deb, then read from the cache), sorted by name.
    public func unpack() throws -> [(pin: PinnedPackage, unpacked: UnpackedPackage)] {
        try packages.map { pin in
            (pin, try DebUnpacker.unpack(deb: cache.path(sha256: pin.sha256), sha256: pin.sha256, cache: cache))
        }
    }
}

/// Mirror and keyring selection, resolution, download.
public enum PackageSets {
    public static let defaultKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

    /// Recipe `mirror:` > `KILN_DEBIAN_MIRROR` > the host's apt source for the suite.
    public static func mirror(
        for request: PackageSetRequest, environment: [String: String] = ProcessInfo.processInfo.environment,
        sources: [AptSource] = AptSources.load()
    ) throws -> String {
        if let mirror = request.mirror, !mirror.isEmpty { return mirror }
        if let mirror = environment["KILN_DEBIAN_MIRROR"], !mirror.isEmpty { return mirror }
        if let source = AptSources.source(for: request.suite, in: sources) { return source.uri }
        throw DebianError.noMirror(suite: request.suite)
    }

    /// Recipe `keyring:` > the `Signed-By` of the host source with that mirror and suite > Debian's keyring.
    public static func keyring(
        for request: PackageSetRequest, mirror: String, sources: [AptSource] = AptSources.load()
    ) -> String {
        if let keyring = request.keyring, !keyring.isEmpty { return keyring }
        let trimmed = { (uri: String) in uri.hasSuffix("/") ? String(uri.dropLast()) : uri }
        if let source = sources.first(where: { trimmed($0.uri) == trimmed(mirror) && $0.suites.contains(request.suite) }
        ),
            let signedBy = source.signedBy
        {
            return signedBy
        }
        return defaultKeyring
    }

    /// Resolves the request against the verified repository and downloads every .deb.
    public static func resolve(
        _ request: PackageSetRequest, mirror: String, keyring: String, cache: DownloadCache, transport: HTTPTransport,
        step: @Sendable (String) -> Void = { _ in }
    ) async throws -> ResolvedPackageSet {
        let repository = Repository(mirror: mirror, suite: request.suite, keyring: keyring, cache: cache)
        let index = try await repository.packages(
            components: request.components, architecture: request.architecture, transport: transport, step: step)
        step("resolving \(request.packages.count) packages among \(index.count)")
        let chosen = try Resolver(packages: index, architecture: request.architecture).resolve(request.packages)
        let versions = chosen.map { "\($0.name) \($0.version)" }.joined(separator: ", ")
        transport.logger.debug(
            "package set \(request.suite)/\(request.architecture): \(request.packages.count) requested, resolved to \(versions)"
        )
        step("downloading \(chosen.count) packages")
        try await download(chosen, mirror: repository.mirror, cache: cache, transport: transport)
        return ResolvedPackageSet(mirror: repository.mirror, packages: chosen.map(pin), cache: cache)
    }

    /// Exactly the locked packages. With every .deb already cached under its locked sha256 no network is
    /// needed (the lock is the trust anchor); otherwise each is looked up in the verified index, where it
    /// must appear with the same version and sha256.
    public static func fetchLocked(
        _ locked: [PinnedPackage], request: PackageSetRequest, mirror: String, keyring: String, cache: DownloadCache,
        transport: HTTPTransport, step: @Sendable (String) -> Void = { _ in }
    ) async throws -> ResolvedPackageSet {
        let trimmedMirror = mirror.hasSuffix("/") ? String(mirror.dropLast()) : mirror
        let sorted = locked.sorted { $0.name < $1.name }
        if sorted.allSatisfy({ cache.cached(sha256: $0.sha256, size: nil) != nil }) {
            transport.logger.debug(
                "package set \(request.suite)/\(request.architecture): the \(sorted.count) locked packages are cached")
            return ResolvedPackageSet(mirror: trimmedMirror, packages: sorted, cache: cache)
        }
        let repository = Repository(mirror: mirror, suite: request.suite, keyring: keyring, cache: cache)
        let index = try await repository.packages(
            components: request.components, architecture: request.architecture, transport: transport, step: step)
        var byKey: [String: BinaryPackage] = [:]
        for package in index { byKey["\(package.name) \(package.sha256)"] = package }
        var found: [BinaryPackage] = []
        for pin in sorted {
            guard let package = byKey["\(pin.name) \(pin.sha256)"], package.version.description == pin.version else {
                throw DebianError.lockedUnavailable(name: pin.name, version: pin.version, mirror: trimmedMirror)
            }
            found.append(package)
        }
        step("downloading \(found.count) packages")
        try await download(found, mirror: repository.mirror, cache: cache, transport: transport)
        // A lock older than `source` learns it from the verified index (the pins are otherwise the lock's).
        let pins = sorted.map { pin in
            var pin = pin
            if pin.source == nil { pin.source = byKey["\(pin.name) \(pin.sha256)"]?.source }
            return pin
        }
        return ResolvedPackageSet(mirror: trimmedMirror, packages: pins, cache: cache)
    }

    static func pin(_ package: BinaryPackage) -> PinnedPackage {
        PinnedPackage(
            name: package.name, version: package.version.description, architecture: package.architecture,
            sha256: package.sha256, filename: package.filename, source: package.source)
    }

    /// Every .deb into the cache, size and sha256 checked against the verified index before it is kept.
    /// Four at a time: a base is dozens of small files, so latency, not bandwidth, is what costs.
    static func download(_ packages: [BinaryPackage], mirror: String, cache: DownloadCache, transport: HTTPTransport)
        async throws
    {
        try await Bounded.forEach(packages, limit: 4) { package in
            _ = try await cache.fetchFile(
                url: mirror + "/" + package.filename, sha256: package.sha256, size: package.size, transport: transport)
        }
    }

    /// Debian's name for an OCI platform's architecture.
    public static func debianArchitecture(_ architecture: String, variant: String?) -> String {
        switch architecture {
        case "386": return "i386"
        case "arm": return variant == "v5" ? "armel" : "armhf"
        case "ppc64le": return "ppc64el"
        case "mips64le": return "mips64el"
        default: return architecture
        }
    }
}
