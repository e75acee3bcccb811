import Foundation
import KilnLayer
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnDebian

/// Hand-made .debs that dpkg-deb would never build: names that climb out of the root, and a symlink that
/// would redirect later members. Nothing may land outside the staging root or the image.
@Suite struct HostileDebTests {
    /// Builds `name.deb` from tar members written by Python's tarfile (which allows any name).
    static func deb(_ tmp: TemporaryDirectory, _ name: String, members: String) throws -> String {
        let dir = tmp.path + "/" + name
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "2.0\n".write(toFile: dir + "/debian-binary", atomically: true, encoding: .utf8)
        let script = """
            import io, tarfile, sys
            def add(t, name, data=None, link=None):
                info = tarfile.TarInfo(name)
                if link is not None:
                    info.type = tarfile.SYMTYPE
                    info.linkname = link
                    t.addfile(info)
                elif data is None:
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    t.addfile(info)
                else:
                    info.size = len(data)
                    info.mode = 0o644
                    t.addfile(info, io.BytesIO(data))
            with tarfile.open("control.tar.gz", "w:gz") as t:
                add(t, "./control", b"Package: \(name)\\nVersion: 1\\nArchitecture: all\\n")
            with tarfile.open("data.tar.gz", "w:gz") as t:
            \(members.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
            """
        try script.write(toFile: dir + "/make.py", atomically: true, encoding: .utf8)
        try Shell.run(["python3", "make.py"], directory: dir)
        try Shell.run(["ar", "rc", "\(name).deb", "debian-binary", "control.tar.gz", "data.tar.gz"], directory: dir)
        return dir + "/\(name).deb"
    }

    @Test func membersClimbingOutOfTheRootAreRefused() async throws {
        try await withTemporaryDirectory("kiln-hostile") { tmp in
            let cache = DownloadCache(root: tmp.path + "/cache")
            let deb = try Self.deb(tmp, "climb", members: #"add(t, "./usr/../../escaped", b"x")"#)
            #expect {
                _ = try DebUnpacker.unpack(deb: deb, sha256: "climb", cache: cache)
            } throws: { error in
                "\(error)".contains("member './usr/../../escaped'") && "\(error)".contains("leaves the image root")
            }
            #expect(!FileManager.default.fileExists(atPath: tmp.path + "/cache/escaped"))
            #expect(!FileManager.default.fileExists(atPath: tmp.path + "/cache/unpacked-v2/escaped"))
            #expect(!FileManager.default.fileExists(atPath: tmp.path + "/cache/unpacked-v2/climb"))
            let absolute = try Self.deb(tmp, "absolute", members: #"add(t, "/etc/../../../tmp/abs", b"x")"#)
            #expect(throws: DebianError.self) {
                _ = try DebUnpacker.unpack(deb: absolute, sha256: "absolute", cache: cache)
            }
        }
    }

    @Test func aSymlinkCannotRedirectLaterMembers() async throws {
        try await withTemporaryDirectory("kiln-hostile") { tmp in
            let cache = DownloadCache(root: tmp.path + "/cache")
            let outside = tmp.path + "/outside"
            try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
            let deb = try Self.deb(
                tmp, "redirect",
                members: """
                    add(t, "./etc", None)
                    add(t, "./etc/x", link="\(outside)")
                    add(t, "./etc/x/passwd", b"owned")
                    """)
            // A member under a path the archive made a symlink is refused, naming both, and nothing lands outside.
            #expect {
                _ = try DebUnpacker.unpack(deb: deb, sha256: "redirect", cache: cache)
            } throws: { error in
                "\(error)".contains("'./etc/x/passwd' is inside 'etc/x'") && "\(error)".contains("not a directory")
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
        }
    }

    @Test func notADebianPackage() async throws {
        try await withTemporaryDirectory("kiln-hostile") { tmp in
            let path = try tmp.write("junk.deb", "not an ar archive")
            #expect(throws: DebianError.self) {
                _ = try DebUnpacker.unpack(deb: path, sha256: "junk", cache: DownloadCache(root: tmp.path + "/cache"))
            }
        }
    }
}
