import Foundation
import KilnTestSupport
import Testing

/// An ELF file for another machine than the image's platform is refused, naming the file and the recipe line.
@Suite struct ForeignBinaryTests {
    /// The first 20 bytes of a little-endian ELF executable for `machine` (62 x86-64, 183 AArch64).
    static func elfHeader(machine: UInt16) -> Data {
        var bytes: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8)
        bytes += [2, 0, UInt8(machine & 0xFF), UInt8(machine >> 8)]
        return Data(bytes + [UInt8](repeating: 0, count: 44))
    }

    func recipe(_ tmp: TemporaryDirectory, platform: String) throws {
        try tmp.write(
            "r/app.yaml",
            """
            name: app
            version: "1"
            platforms: [\(platform)]
            layers:
              - name: bin
                add:
                  - src: tool
                    to: /usr/local/bin/tool
                    mode: "0755"

            """)
    }

    @Test func anArm64BinaryIsRefusedInAnAmd64ImageAndAcceptedInAnArm64One() async throws {
        try await withTemporaryDirectory("kiln-foreign") { tmp in
            try FileManager.default.createDirectory(atPath: tmp.path + "/r", withIntermediateDirectories: true)
            try Self.elfHeader(machine: 183).write(to: URL(fileURLWithPath: tmp.path + "/r/tool"))
            let store = tmp.path + "/images"

            try recipe(tmp, platform: "linux/amd64")
            let refused = try KilnBinary.run(["build", tmp.path + "/r", "--store", store], check: false)
            #expect(refused.status == 65)
            #expect(refused.stderr.contains("app.yaml:7:"))
            #expect(
                refused.stderr.contains("/usr/local/bin/tool is an ELF binary for arm64, but this image is linux/amd64")
            )
            #expect(!(try KilnBinary.run(["images", "--store", store]).stdout.contains("app:1")))

            // Intended (say, a cross toolchain): the flag lets it through.
            try KilnBinary.run(["build", tmp.path + "/r", "--store", store, "--allow-foreign-binaries"])
            // The layer is in the store's cache now: reusing it without the flag is refused as well.
            let reused = try KilnBinary.run(["build", tmp.path + "/r", "--store", store], check: false)
            #expect(reused.status == 65)
            #expect(reused.stderr.contains("/usr/local/bin/tool is an ELF binary for arm64"))

            try recipe(tmp, platform: "linux/arm64")
            try KilnBinary.run(["build", tmp.path + "/r", "--store", store + "-arm64"])
            let inspected = try KilnBinary.run(["inspect", "app:1", "--store", store + "-arm64"]).stdout
            #expect(inspected.contains("arm64"))
        }
    }
}
