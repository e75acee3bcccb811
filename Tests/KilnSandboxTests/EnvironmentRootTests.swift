import Foundation
import KilnLayer
import KilnTestSupport
import Testing

@testable import KilnSandbox

/// What an environment root gets besides its packages' files, and what it refuses.
@Suite struct EnvironmentRootTests {
    func file(_ tmp: TemporaryDirectory, _ name: String, mode: UInt32 = 0o755) throws -> LayerEntry {
        let source = try tmp.write("pkg/" + name, "#!/bin/sh\n")
        return LayerEntry(path: "/usr/bin/" + name, kind: .file(.path(source)), mode: mode)
    }

    @Test func alternativesAndAccountsMaintainerScriptsWouldHaveMade() async throws {
        try await withTemporaryDirectory("kiln-envroot") { tmp in
            let entries = [
                LayerEntry(path: "/bin", kind: .directory, mode: 0o755),
                LayerEntry(path: "/bin/dash", kind: .file(.path(try tmp.write("pkg/dash", "x"))), mode: 0o755),
                try file(tmp, "clang"), try file(tmp, "clang++"), try file(tmp, "gawk"),
                try file(tmp, "README", mode: 0o644),
            ]
            let root = try EnvironmentRoot.prepare(key: "k", entries: entries, cache: tmp.path + "/envs")
            #expect(
                root.provided == [
                    "/bin/sh -> /bin/dash", "/usr/bin/cc -> /usr/bin/clang", "/usr/bin/c++ -> /usr/bin/clang++",
                    "/usr/bin/awk -> /usr/bin/gawk", "/etc/passwd (root and nobody only)",
                    "/etc/group (root and nobody only)",
                ])
            #expect(
                try FileManager.default.destinationOfSymbolicLink(atPath: root.path + "/usr/bin/cc") == "/usr/bin/clang"
            )
            let mode = try FileManager.default.attributesOfItem(atPath: root.path + "/usr/bin/clang")[.posixPermissions]
            #expect(mode as? Int == 0o755)
            // The cache's files are copied, not linked: a link would change their ctime and link count, which
            // layer writing reads as "changed while being added" when another build uses the same packages.
            var copy = stat()
            var original = stat()
            stat(root.path + "/usr/bin/README", &copy)
            stat(tmp.path + "/pkg/README", &original)
            #expect(copy.st_ino != original.st_ino && original.st_nlink == 1)
            // Prepared once: a second call with other entries returns the cached root unchanged.
            let again = try EnvironmentRoot.prepare(key: "k", entries: [], cache: tmp.path + "/envs")
            #expect(again.path == root.path && again.provided == root.provided)
            #expect(
                EnvironmentRoot.key(packages: ["a 1 amd64 x", "b 2 amd64 y"])
                    == EnvironmentRoot.key(packages: ["b 2 amd64 y", "a 1 amd64 x"]))
        }
    }

    @Test func aPackageCannotWriteOutsideTheRootThroughASymlinkedDirectory() async throws {
        try await withTemporaryDirectory("kiln-envroot-escape") { tmp in
            try FileManager.default.createDirectory(atPath: tmp.path + "/outside", withIntermediateDirectories: true)
            let entries = [
                LayerEntry(path: "/usr/lib/evil", kind: .symlink(target: tmp.path + "/outside"), mode: 0o777),
                LayerEntry(path: "/usr/lib/evil/planted", kind: .file(.bytes(Data("x".utf8))), mode: 0o644),
            ]
            #expect(throws: SandboxError.self) {
                try EnvironmentRoot.prepare(key: "k", entries: entries, cache: tmp.path + "/envs")
            }
            #expect(!FileManager.default.fileExists(atPath: tmp.path + "/outside/planted"))
            #expect(!FileManager.default.fileExists(atPath: tmp.path + "/envs/k"))
        }
    }
}
