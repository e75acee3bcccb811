import Foundation
import KilnDebian
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

/// Multi-platform images from per-platform inputs: Debian's real busybox-static for amd64 and for arm64 (from
/// the host's configured mirror), served as url inputs that each name their platform, and
/// `kiln build --platform`.
@Suite(.serialized) struct PlatformInputsTests {
    /// The ELF machine field (bytes 18–19, little-endian): 62 is x86-64, 183 is AArch64.
    static func elfMachine(_ file: String) throws -> Int {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)).prefix(20))
        return bytes.count == 20 ? Int(bytes[18]) | Int(bytes[19]) << 8 : -1
    }

    /// The manifest of `platform` under `reference`, and the file at `path` (no leading slash) unpacked from its
    /// layers into `directory` (nil when no layer has it).
    static func file(
        _ path: String, of reference: String, architecture: String, store: String, into directory: String
    ) throws -> (image: StoredImage, file: String?) {
        let layout = try OCILayout(root: store)
        let images = try layout.images(for: try layout.resolve(reference))
        let image = try #require(images.first { $0.config.architecture == architecture })
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var found: String?
        for layer in image.manifest.layers {
            let blob = try #require(layout.localFile(layer))
            let listed = try Shell.run(["tar", "-tzf", blob]).stdout.split(separator: "\n")
            guard listed.contains(where: { $0 == path || $0 == "./" + path }) else { continue }
            try Shell.run(["tar", "-xzf", blob, "-C", directory, listed.first { $0.hasSuffix(path) }.map(String.init)!])
            found = directory + "/" + path
        }
        return (image, found)
    }

    @Test func eachPlatformTakesItsOwnInputsAndBuildPlatformNarrows() async throws {
        guard let source = AptSources.load().first(where: { $0.components.contains("main") && !$0.suites.isEmpty })
        else {
            Issue.record("the host has no apt source with a main component to test against")
            return
        }
        try await withTemporaryDirectory("kiln-platforms") { tmp in
            try await withPodman { podman in
                let environment = ["KILN_CACHE_DIR": tmp.path + "/cache", "KILN_DEBIAN_MIRROR": ""]

                // Debian's busybox-static for both architectures, by a package set per platform.
                try tmp.write(
                    "debs/busybox.yaml",
                    """
                    name: debian-busybox
                    version: "1"
                    platforms: [linux/amd64, linux/arm64]
                    layers:
                      - name: busybox
                        packages:
                          suite: \(source.suites[0])
                          packages: [busybox-static]
                    """)
                let debStore = tmp.path + "/debs-store"
                try KilnBinary.run(["build", tmp.path + "/debs", "--store", debStore], environment: environment)
                var served: [String: String] = [:]
                for arch in ["amd64", "arm64"] {
                    let (_, file) = try Self.file(
                        "bin/busybox", of: "debian-busybox:1", architecture: arch, store: debStore,
                        into: tmp.path + "/unpacked-\(arch)")
                    let binary = try #require(file, "no bin/busybox in the \(arch) image")
                    try FileManager.default.createDirectory(
                        atPath: tmp.path + "/files/\(arch)", withIntermediateDirectories: true)
                    try FileManager.default.copyItem(atPath: binary, toPath: tmp.path + "/files/\(arch)/busybox")
                    served[arch] = try Shell.run(["sha256sum", binary]).stdout.prefix(64).description
                }
                // Narrowed to one platform, a multi-platform recipe keeps its lock keys (`…/arm64`): offline, it builds
                // from the locked set and the cached .deb without resolving anything.
                let narrowedDebs = try KilnBinary.run(
                    [
                        "build", tmp.path + "/debs", "--store", tmp.path + "/debs-arm", "--platform", "linux/arm64",
                        "--offline",
                    ],
                    environment: environment, check: false)
                #expect(narrowedDebs.status == 0, "\(narrowedDebs.stderr)")
                #expect(
                    try Oracles.skopeoInspect(layout: tmp.path + "/debs-arm", reference: "debian-busybox:1-arm64")[
                        "Architecture"] as? String == "arm64")
                #expect(try Self.elfMachine(tmp.path + "/files/amd64/busybox") == 62)
                #expect(try Self.elfMachine(tmp.path + "/files/arm64/busybox") == 183)
                try await withFileServer(root: tmp.path + "/files") { server in

                    func recipe(arm64Binary: String) throws {
                        try tmp.write(
                            "r/tools.yaml",
                            """
                            name: tools
                            version: "1"
                            platforms: [linux/amd64, linux/arm64]
                            layers:
                              - name: busybox
                                add:
                                  - url: \(server.url)/amd64/busybox
                                    sha256: \(served["amd64"]!)
                                    to: /bin/busybox
                                    mode: "0755"
                                    platforms: linux/amd64
                                  - url: \(server.url)/\(arm64Binary)/busybox
                                    sha256: \(served[arm64Binary]!)
                                    to: /bin/busybox
                                    mode: "0755"
                                    platforms: [linux/arm64]
                              - name: arm-notes
                                platforms: [linux/arm64]
                                files:
                                  - path: /etc/arch
                                    content: arm64
                            entrypoint: [/bin/busybox]
                            cmd: [echo, hello from busybox]
                            """)
                    }

                    // The x86-64 busybox given to the arm64 image is refused, naming the file and the recipe line.
                    try recipe(arm64Binary: "amd64")
                    let store = tmp.path + "/images"
                    let refused = try KilnBinary.run(
                        ["build", tmp.path + "/r", "--store", store], environment: environment, check: false)
                    #expect(refused.status == 65, "\(refused.stderr)")
                    #expect(refused.stderr.contains("tools.yaml:12:"), "\(refused.stderr)")
                    #expect(
                        refused.stderr.contains(
                            "/bin/busybox is an ELF binary for amd64, but this image is linux/arm64"))

                    // Each platform's image holds its own binary, and only the arm64 one has the arm64-only layer.
                    try recipe(arm64Binary: "arm64")
                    try KilnBinary.run(["lock", tmp.path + "/r", "--store", store], environment: environment)
                    try KilnBinary.run(["build", tmp.path + "/r", "--store", store], environment: environment)
                    for (arch, machine) in [("amd64", 62), ("arm64", 183)] {
                        let (image, busybox) = try Self.file(
                            "bin/busybox", of: "tools:1", architecture: arch, store: store,
                            into: tmp.path + "/check-\(arch)")
                        let path = try #require(busybox)
                        #expect(try Self.elfMachine(path) == machine)
                        #expect(try Shell.run(["sha256sum", path]).stdout.hasPrefix(served[arch]!))
                        #expect(image.manifest.layers.count == (arch == "arm64" ? 2 : 1))
                        let notes = try Self.file(
                            "etc/arch", of: "tools:1", architecture: arch, store: store,
                            into: tmp.path + "/notes-\(arch)")
                        #expect((notes.file != nil) == (arch == "arm64"))
                    }
                    // Independent readers: skopeo picks the arm64 image from the index, podman runs the amd64 one.
                    let arm = try Shell.run(["skopeo", "--override-arch", "arm64", "inspect", "oci:\(store):tools:1"])
                        .stdout
                    #expect(arm.contains("\"Architecture\": \"arm64\""))
                    #expect(try podman.run("oci:\(store):tools:1").stdout.contains("hello from busybox"))
                    let locked = try String(contentsOfFile: tmp.path + "/r/kiln.lock", encoding: .utf8)
                    let index = try OCILayout(root: store).resolve("tools:1").digest
                    #expect(locked.contains(index.description))

                    // --platform builds just that platform: a plain arm64 manifest tagged apart (`1-arm64`), fetched
                    // without the amd64 input, and the lock still records the image of both platforms.
                    let narrowStore = tmp.path + "/arm-only"
                    let before = server.requests.count
                    try KilnBinary.run(
                        ["build", tmp.path + "/r", "--store", narrowStore, "--platform", "linux/arm64"],
                        environment: ["KILN_CACHE_DIR": tmp.path + "/cache2", "KILN_DEBIAN_MIRROR": ""])
                    let fetched = server.requests.dropFirst(before)
                    #expect(fetched.contains { $0.contains("/arm64/busybox") })
                    #expect(!fetched.contains { $0.contains("/amd64/busybox") }, "\(Array(fetched))")
                    let raw = try Oracles.skopeoInspect(layout: narrowStore, reference: "tools:1-arm64", raw: true)
                    #expect(raw["mediaType"] as? String == "application/vnd.oci.image.manifest.v1+json")
                    let config = try Oracles.skopeoInspect(layout: narrowStore, reference: "tools:1-arm64")
                    #expect(config["Architecture"] as? String == "arm64")
                    #expect(try String(contentsOfFile: tmp.path + "/r/kiln.lock", encoding: .utf8) == locked)

                    // A platform no recipe builds, and --locked with a narrowed build, are usage errors.
                    let unknown = try KilnBinary.run(
                        ["build", tmp.path + "/r", "--store", narrowStore, "--platform", "linux/s390x"],
                        environment: environment, check: false)
                    #expect(unknown.status == 64)
                    #expect(
                        unknown.stderr.contains(
                            "tools is built for linux/amd64, linux/arm64, not for --platform linux/s390x"))
                    let lockedNarrow = try KilnBinary.run(
                        ["build", tmp.path + "/r", "--store", narrowStore, "--platform", "linux/arm64", "--locked"],
                        environment: environment, check: false)
                    #expect(lockedNarrow.status == 64)
                    #expect(lockedNarrow.stderr.contains("run it without --platform"))
                }
            }
        }
    }
}
