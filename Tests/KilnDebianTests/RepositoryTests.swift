import Foundation
import KilnHTTP
import KilnLayer
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnDebian

/// Against a real signed repository (dpkg-deb, apt-ftparchive, gpg) served on 127.0.0.1: verification,
/// resolution, download into the cache, unpacking, and every way a tampered repository must fail.
@Suite(.serialized) struct RepositoryTests {
    static let packages: [DebianRepository.Package] = [
        .init(
            "app", "1.0",
            fields: ["Depends": "libfoo (>= 1.2), mail-transport-agent | exim4", "Pre-Depends": "libbase"],
            files: ["/usr/bin/app": "x:#!/bin/sh\necho app\n", "/usr/share/doc/app/README": "read me\n"],
            symlinks: ["/usr/bin/app-link": "app"], hardlinks: ["/usr/bin/app-hard": "/usr/bin/app"]),
        .init("libfoo", "1.1", fields: ["Depends": "libbase"]),
        .init("libfoo", "1.3", fields: ["Depends": "libbase", "Source": "foo (1.3)"]),
        .init("libbase", "2.0", architecture: "all", fields: ["Provides": "base-abi (= 2)"]),
        .init("postfix-lite", "1.0", fields: ["Provides": "mail-transport-agent"]),
        .init("clash", "1.0", fields: ["Conflicts": "libfoo"]),
        .init("needs-abi", "1.0", fields: ["Depends": "base-abi (>= 2)"]),
    ]

    struct Fixture {
        let repository: DebianRepository
        let cacheDirectory: TemporaryDirectory
        let transport: HTTPTransport
        var cache: DownloadCache { DownloadCache(root: cacheDirectory.path) }
        var request: PackageSetRequest {
            PackageSetRequest(suite: repository.suite, components: ["main"], packages: ["app"], architecture: "amd64")
        }

        /// A served repository and an empty download cache for `body`, stopped and removed however it ends.
        static func with<T>(_ body: (Fixture) async throws -> T) async throws -> T {
            try await withTemporaryDirectory("kiln-debcache") { cacheDirectory in
                let fixture = try Fixture(cacheDirectory: cacheDirectory)
                do {
                    let result = try await body(fixture)
                    await fixture.close()
                    return result
                } catch {
                    await fixture.close()
                    throw error
                }
            }
        }

        init(cacheDirectory: TemporaryDirectory) throws {
            repository = try DebianRepository(packages: RepositoryTests.packages)
            try repository.serve()
            self.cacheDirectory = cacheDirectory
            transport = try HTTPTransport(options: HTTPOptions(attempts: 1))
        }

        func resolve(_ names: [String]) async throws -> ResolvedPackageSet {
            var request = request
            request.packages = names
            return try await PackageSets.resolve(
                request, mirror: repository.url, keyring: repository.keyring, cache: cache, transport: transport)
        }

        func close() async {
            await transport.shutdown()
            repository.stop()
        }
    }

    @Test func resolvesVerifiesDownloadsAndUnpacks() async throws {
        try await Fixture.with { fixture in
            let set = try await fixture.resolve(["app"])
            #expect(
                set.packages.map { "\($0.name)=\($0.version)" } == [
                    "app=1.0", "libbase=2.0", "libfoo=1.3", "postfix-lite=1.0",
                ])
            #expect(set.packages.first { $0.name == "libbase" }?.architecture == "all")
            for pin in set.packages {
                let data = try Data(contentsOf: URL(fileURLWithPath: fixture.cache.path(sha256: pin.sha256)))
                #expect(Digest.sha256(data).encoded == pin.sha256)
                #expect(pin.filename.hasPrefix("pool/main/\(pin.name)_"))
            }
            let unpacked = try set.unpack()
            let app = unpacked[0].unpacked
            #expect(app.control["Package"] == "app" && app.control["Pre-Depends"] == "libbase")
            let byPath = Dictionary(uniqueKeysWithValues: app.entries.map { ($0.path, $0) })
            let binary = try #require(byPath["/usr/bin/app"])
            #expect(binary.mode == 0o755 && binary.uid == 0 && binary.gid == 0)
            guard case .file(.path(let staged)) = binary.kind else {
                Issue.record("not a staged file: \(binary.kind)")
                return
            }
            #expect(try String(contentsOfFile: staged, encoding: .utf8) == "#!/bin/sh\necho app\n")
            #expect(staged.hasPrefix(fixture.cacheDirectory.path + "/unpacked-v2/"))
            #expect(byPath["/usr/share/doc/app/README"]?.mode == 0o644)
            #expect(byPath["/usr/bin/app-link"]?.kind == .symlink(target: "app"))
            // dpkg-deb stores the second name of a hard-linked file as a hard link to the first in tar order.
            let links = app.entries.filter { if case .hardlink = $0.kind { true } else { false } }
            #expect(links.count == 1)
            #expect(byPath["/usr/bin"]?.kind == .directory)
            // The unpacked entries write a valid layer (paths normalised, hard link after its target).
            let layer = fixture.cacheDirectory.path + "/layer.tar"
            _ = try LayerWriter.write(
                entries: app.entries + StatusDatabase.entries([app]), to: layer,
                options: LayerOptions(compression: .none))
            let listing = try Shell.run(["tar", "-tvf", layer]).stdout
            #expect(listing.contains("var/lib/dpkg/status.d/app"))
            #expect(listing.contains("usr/bin/app-link -> app"))
            // A second unpack reads the cache.
            #expect(try set.unpack()[0].unpacked.entries == app.entries)
            let foo = unpacked.first { $0.pin.name == "libfoo" }!.unpacked
            #expect(foo.control["Source"] == "foo (1.3)")

            // Locked with every .deb cached: no network at all (the server is gone), the lock's sha256 suffices.
            fixture.repository.server?.stop()
            let offline = try await PackageSets.fetchLocked(
                set.packages, request: fixture.request, mirror: fixture.repository.url,
                keyring: fixture.repository.keyring, cache: fixture.cache, transport: fixture.transport)
            #expect(offline.packages == set.packages)
            try fixture.repository.serve()

            // Locked: exactly the pins, from a cold cache through the verified index…
            try await withTemporaryDirectory("kiln-debcache-cold") { cold in
                let locked = try await PackageSets.fetchLocked(
                    set.packages, request: fixture.request, mirror: fixture.repository.url,
                    keyring: fixture.repository.keyring,
                    cache: DownloadCache(root: cold.path), transport: fixture.transport)
                #expect(locked.packages == set.packages)
                #expect(FileManager.default.fileExists(atPath: cold.path + "/sha256/" + set.packages[0].sha256))
                // …and a pin the mirror no longer serves fails naming it and pointing at snapshot mirrors.
                var gone = set.packages
                gone[2].version = "1.2"
                gone[2].sha256 = String(repeating: "e", count: 64)
                await #expect {
                    _ = try await PackageSets.fetchLocked(
                        gone, request: fixture.request, mirror: fixture.repository.url,
                        keyring: fixture.repository.keyring, cache: DownloadCache(root: cold.path + "/x"),
                        transport: fixture.transport)
                } throws: { error in
                    "\(error)".contains("locked package libfoo 1.2 is not served")
                        && "\(error)".contains("snapshot mirror")
                }
            }
        }
    }

    @Test func providesVersionsAndConflictsAgainstARealIndex() async throws {
        try await Fixture.with { fixture in
            // An ASCII-armoured keyring (as in /etc/apt/keyrings/*.asc) verifies too.
            var request = fixture.request
            request.packages = ["libbase"]
            let viaArmour = try await PackageSets.resolve(
                request, mirror: fixture.repository.url, keyring: fixture.repository.armouredKeyring,
                cache: fixture.cache, transport: fixture.transport)
            #expect(viaArmour.packages.map(\.name) == ["libbase"])
            #expect(try await fixture.resolve(["needs-abi"]).packages.map(\.name) == ["libbase", "needs-abi"])
            await #expect(throws: DebianError.conflict(package: "clash 1.0", relation: "libfoo", with: "libfoo 1.3")) {
                _ = try await fixture.resolve(["app", "clash"])
            }
            await #expect(throws: DebianError.missingPackage(name: "nosuch", requiredBy: nil)) {
                _ = try await fixture.resolve(["nosuch"])
            }
        }
    }

    @Test func tamperedDebIsRefusedAndNotCached() async throws {
        try await Fixture.with { fixture in
            // Same size, one byte different: only the sha256 can tell.
            let path = fixture.repository.debPath("libbase", "2.0", architecture: "all")
            var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            bytes[bytes.count - 10] ^= 0xFF
            try bytes.write(to: URL(fileURLWithPath: path))
            await #expect {
                _ = try await fixture.resolve(["app"])
            } throws: { error in
                "\(error)".contains("libbase_2.0_all.deb") && "\(error)".contains("refusing it")
            }
            let stored =
                (try? FileManager.default.contentsOfDirectory(atPath: fixture.cacheDirectory.path + "/sha256")) ?? []
            #expect(!stored.contains(Digest.sha256(bytes).encoded))
            #expect(!stored.contains { $0.contains(".part") })
        }
    }

    @Test func tamperedPackagesIndexIsRefused() async throws {
        try await Fixture.with { fixture in
            let index = fixture.repository.root + "/dists/\(fixture.repository.suite)/main/binary-amd64/Packages"
            let text = try String(contentsOfFile: index, encoding: .utf8)
            try text.replacingOccurrences(of: "Version: 1.3", with: "Version: 1.4").write(
                toFile: index, atomically: true, encoding: .utf8)
            try Shell.run(["xz", "-kf", index])
            await #expect {
                _ = try await fixture.resolve(["app"])
            } throws: { error in
                "\(error)".contains("Packages.xz") && "\(error)".contains("Refusing the package index")
            }
        }
    }

    @Test func unsignedOrStrangerSignedInReleaseIsRefused() async throws {
        try await Fixture.with { fixture in
            try fixture.repository.index(sign: false)
            await #expect {
                _ = try await fixture.resolve(["app"])
            } throws: { error in
                "\(error)".contains("InRelease: signature check failed")
            }
            try fixture.repository.signWithStrangerKey()
            await #expect {
                _ = try await fixture.resolve(["app"])
            } throws: { error in
                "\(error)".contains("signature check failed")
            }
            // A validly signed Release replayed under another suite's name is refused.
            try fixture.repository.index()
            let dists = fixture.repository.root + "/dists/"
            try FileManager.default.copyItem(atPath: dists + fixture.repository.suite, toPath: dists + "other")
            var request = fixture.request
            request.suite = "other"
            await #expect {
                _ = try await PackageSets.resolve(
                    request, mirror: fixture.repository.url, keyring: fixture.repository.keyring, cache: fixture.cache,
                    transport: fixture.transport)
            } throws: { error in
                "\(error)".contains("signed Release is for suite 'kilntest'")
            }
            // A suite the mirror does not serve at all.
            request.suite = "absent"
            await #expect {
                _ = try await PackageSets.resolve(
                    request, mirror: fixture.repository.url, keyring: fixture.repository.keyring, cache: fixture.cache,
                    transport: fixture.transport)
            } throws: { error in
                "\(error)".contains("HTTP 404") && "\(error)".contains("suite 'absent'")
            }
        }
    }
}
