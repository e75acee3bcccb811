import Foundation
import KilnTestSupport
import Testing

@testable import KilnLayer

/// The hostile-input corpus for the archive reader: every case is generated at test time (Python's tarfile,
/// zipfile and gzip write what well-behaved tools never would), must end in a clear error naming the archive
/// and the member, within a bounded time, with nothing written outside the destination.
@Suite struct HostileArchiveTests {
    /// Runs `script` (Python, with `out` the archive path and tarfile, zipfile, gzip, io imported) in a fresh
    /// directory and hands `body` the directory and the archive's path; the directory is removed afterwards.
    func withArchive<T>(
        _ name: String, _ script: String, _ body: (TemporaryDirectory, String) async throws -> T
    ) async throws -> T {
        try await withTemporaryDirectory("kiln-hostile") { tmp in
            try await body(tmp, try make(name, script, in: tmp))
        }
    }

    func make(_ name: String, _ script: String, in tmp: TemporaryDirectory) throws -> String {
        let path = tmp.path + "/" + name
        let prelude = """
            import tarfile, zipfile, gzip, io, os, sys
            out = sys.argv[1]
            def add(t, name, data=b'x', kind=tarfile.REGTYPE, link='', mode=0o644):
                i = tarfile.TarInfo(name); i.type = kind; i.linkname = link; i.mode = mode
                i.size = len(data) if kind == tarfile.REGTYPE else 0
                t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

            """
        try (prelude + script).write(toFile: tmp.path + "/make.py", atomically: true, encoding: .utf8)
        try Shell.run(["python3", tmp.path + "/make.py", path])
        return path
    }

    /// Reads every entry and its content, unpacking into `tmp/out`, and returns the error's text (nil when
    /// the archive was accepted). Checks that nothing appeared in `tmp` besides the archive, the script and
    /// `out/`.
    func outcome(
        _ tmp: TemporaryDirectory, _ path: String, format: ArchiveReader.Format = .any,
        policy: ArchivePolicy = .input, limit: ExpansionLimit = .inputs, seconds: Double = 20
    ) throws -> String? {
        let started = Date()
        defer {
            #expect(Date().timeIntervalSince(started) < seconds, "bounded time")
            let names = Set((try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? [])
            #expect(names.isSubset(of: [(path as NSString).lastPathComponent, "make.py", "out"]), "\(names)")
        }
        do {
            let reader = try ArchiveReader(path: path, format: format, policy: policy, limit: limit)
            _ = try ArchiveExtractor.extract(reader, into: tmp.path + "/out")
            return nil
        } catch let error as LayerError {
            return error.description
        }
    }

    @Test func tarGzWithABadCRCIsRefused() async throws {
        try await withArchive(
            "bad-crc.tar.gz",
            """
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode='w') as t: add(t, 'bin/tool', b'hello' * 1000)
            data = bytearray(gzip.compress(buf.getvalue()))
            data[-8] ^= 0xff   # the CRC-32 in the trailer; the deflate data stays intact
            open(out, 'wb').write(data)
            """
        ) { tmp, path in
            let error = try #require(try outcome(tmp, path))
            #expect(error.contains("bad-crc.tar.gz") && error.contains("corrupt gzip data"), "\(error)")
        }
    }

    @Test func truncatedTarGzIsRefused() async throws {
        try await withArchive(
            "cut.tar.gz",
            """
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode='w') as t: add(t, 'bin/tool', os.urandom(100000))
            open(out, 'wb').write(gzip.compress(buf.getvalue())[:-20])
            """
        ) { tmp, path in
            let error = try #require(try outcome(tmp, path))
            #expect(error.contains("cut.tar.gz"), "\(error)")
        }
    }

    @Test func zipMemberWithABadCRCIsRefused() async throws {
        try await withArchive(
            "bad-crc.zip",
            """
            with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as z: z.writestr('bin/tool', b'A' * 4096)
            data = bytearray(open(out, 'rb').read())
            at = data.find(b'A' * 64)
            data[at + 10] = ord('B')   # content changed, both CRCs left as they were
            open(out, 'wb').write(data)
            """
        ) { tmp, path in
            let error = try #require(try outcome(tmp, path))
            #expect(error.contains("bad-crc.zip") && error.contains("bin/tool"), "\(error)")
        }
    }

    @Test func zipWithoutItsCentralDirectoryIsRefused() async throws {
        try await withArchive(
            "cut.zip",
            """
            with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:
                info = zipfile.ZipInfo('bin/tool'); info.external_attr = 0o755 << 16
                z.writestr(info, b'#!/bin/sh\\n' * 100)
            data = open(out, 'rb').read()
            open(out, 'wb').write(data[:data.rfind(b'PK\\x01\\x02')])
            """
        ) { tmp, path in
            let error = try #require(try outcome(tmp, path))
            #expect(error.contains("cut.zip") && error.contains("central directory is missing"), "\(error)")
        }
    }

    /// 8.4 GiB of zeros in 8 MB of concatenated gzip members: the default limits stop it after the ratio floor.
    @Test func decompressionBombStopsEarlyUnderTheDefaultLimits() async throws {
        try await withArchive(
            "bomb.tar.gz",
            """
            zeros = gzip.compress(b'\\0' * (64 << 20), 9)
            header = io.BytesIO()
            info = tarfile.TarInfo('zeros'); info.size = 135 * (64 << 20)
            header.write(info.tobuf(format=tarfile.GNU_FORMAT))
            with open(out, 'wb') as f:
                f.write(gzip.compress(header.getvalue()))
                for _ in range(135): f.write(zeros)
            """
        ) { tmp, path in
            let error = try #require(try outcome(tmp, path, seconds: 10))
            #expect(error.contains("bomb.tar.gz") && error.contains("decompression bomb"), "\(error)")
            let written =
                (try? FileManager.default.attributesOfItem(atPath: tmp.path + "/out/zeros")[.size] as? Int) ?? 0
            #expect(written == 0, "refused before unpacking")
        }
    }

    /// A total-size limit counts bytes as they are unpacked, also where the gzip check does not run (xz).
    @Test func expansionIsCountedAsItIsWritten() async throws {
        try await withArchive(
            "big.tar.xz",
            """
            with tarfile.open(out, 'w:xz') as t: add(t, 'big', b'\\0' * (8 << 20))
            """
        ) { tmp, path in
            let limit = ExpansionLimit(maxBytes: 4 << 20)
            let error = try #require(try outcome(tmp, path, limit: limit))
            #expect(error.contains("more than \(4 << 20) bytes"), "\(error)")
            try? FileManager.default.removeItem(atPath: tmp.path + "/out")
            let ratio = ExpansionLimit(maxBytes: .max, maxRatio: 100, ratioFloor: 1 << 20)
            #expect(try outcome(tmp, path, limit: ratio)?.contains("expands more than 100 times") == true)
            try? FileManager.default.removeItem(atPath: tmp.path + "/out")
            #expect(try outcome(tmp, path, limit: .none) == nil, "the same archive under no limit")
        }
    }

    @Test func deepPathIsRefusedBeforeAnythingIsWritten() async throws {
        try await withArchive(
            "deep.tar.gz",
            """
            with tarfile.open(out, 'w:gz', format=tarfile.PAX_FORMAT) as t: add(t, 'a/' * 2000 + 'f')
            """
        ) { tmp, path in
            let error = try #require(try outcome(tmp, path))
            #expect(error.contains("deep.tar.gz") && error.contains("2001 levels"), "\(error)")
            #expect(!FileManager.default.fileExists(atPath: tmp.path + "/out/a"))
        }
    }

    @Test func nonUTF8NamesAreRefusedWithTheirBytes() async throws {
        try await withArchive(
            "latin1.tar",
            """
            with tarfile.open(out, 'w', format=tarfile.GNU_FORMAT, encoding='latin-1') as t:
                add(t, 'caf\\u00e9.txt')
            """
        ) { tmp, path in
            let error = try #require(try outcome(tmp, path))
            #expect(error.contains("'caf\\xe9.txt' is not UTF-8"), "\(error)")
            #expect(!error.contains("\u{FFFD}"))
        }
    }

    @Test(arguments: [
        ("add(t, 'a', b'one')\nadd(t, 'a', b'two')", "member 'a' appears twice (as a file, then as a file)"),
        (
            "add(t, 'a')\nadd(t, 'a', kind=tarfile.DIRTYPE)",
            "member 'a/' appears twice (as a file, then as a directory)"
        ),
        ("add(t, 'a')\nadd(t, 'a/b')", "member 'a/b' is inside 'a', which the archive has as a file"),
        (
            "add(t, 'l', kind=tarfile.SYMTYPE, link='d')\nadd(t, 'l/x')",
            "inside 'l', which the archive has as a symlink"
        ),
        ("add(t, 'dev/null', kind=tarfile.CHRTYPE)", "member 'dev/null' is a device, FIFO or socket"),
        ("add(t, 'p', kind=tarfile.FIFOTYPE)", "member 'p' is a device, FIFO or socket"),
        ("add(t, '../evil')", "member '../evil' leaves the image root"),
        ("add(t, '/etc/passwd')", "member '/etc/passwd' leaves the image root"),
        (
            "add(t, 'h', kind=tarfile.LNKTYPE, link='/etc/passwd')",
            "(a hard link to '/etc/passwd') leaves the image root"
        ),
        ("add(t, 'h', kind=tarfile.LNKTYPE, link='../x')", "(a hard link to '../x') leaves the image root"),
        ("add(t, 's', kind=tarfile.SYMTYPE, link='../../etc')", "is a symlink to '../../etc', outside the archive"),
        ("add(t, '.wh.x')", "names starting with .wh."),
    ])
    func refusedMembers(_ members: String, _ message: String) async throws {
        try await withArchive(
            "hostile.tar.gz",
            "with tarfile.open(out, 'w:gz') as t:\n"
                + members.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")
        ) { tmp, path in
            let error = try #require(try outcome(tmp, path))
            #expect(error.contains("hostile.tar.gz") && error.contains(message), "\(error)")
        }
    }

    @Test func aRepeatedDirectoryIsMerged() async throws {
        // Spelled out: a closure whose only `try`s sit inside #expect is not inferred to throw.
        try await withArchive(
            "dirs.tar.gz",
            """
            with tarfile.open(out, 'w:gz') as t:
                add(t, 'd', kind=tarfile.DIRTYPE, mode=0o755)
                add(t, 'd/f')
                add(t, 'd', kind=tarfile.DIRTYPE, mode=0o700)
            """
        ) { (tmp, path) throws -> Void in
            #expect(try outcome(tmp, path) == nil)
        }
    }

    /// Pulled base layers: the escapes are refused, what images legitimately hold (absolute symlinks,
    /// whiteouts, Debian's setuid `su`) is not, and devices and setuid files can be refused on request.
    @Test func layerValidation() async throws {
        try await withArchive(
            "good.tar",
            """
            with tarfile.open(out, 'w') as t:
                add(t, 'usr/bin/awk', kind=tarfile.SYMTYPE, link='/etc/alternatives/awk')
                add(t, 'etc/.wh.old')
                add(t, 'etc/.wh..wh..opq')
                add(t, 'bin/su', mode=0o4755)
                add(t, 'dev/null', kind=tarfile.CHRTYPE)
            """
        ) { tmp, path in
            #expect(throws: Never.self) {
                try LayerReader.validate(at: path, rules: .init(allowDevices: true, allowSetuid: true))
            }
            #expect(throws: LayerError.self) { try LayerReader.validate(at: path, rules: .init(allowDevices: false)) }
            #expect(throws: LayerError.self) {
                try LayerReader.validate(at: path, rules: .init(allowDevices: true, allowSetuid: false))
            }
            for (member, message) in [
                ("add(t, '../etc/passwd')", "leaves the image root"),
                ("add(t, '/etc/passwd')", "leaves the image root"),
                ("add(t, 'a/s', kind=tarfile.SYMTYPE, link='../../etc/shadow')", "outside the archive"),
                ("add(t, 'h', kind=tarfile.LNKTYPE, link='/etc/passwd')", "leaves the image root"),
            ] {
                try await withArchive("bad.tar", "with tarfile.open(out, 'w') as t:\n    " + member) {
                    (bad, layer) throws -> Void in
                    #expect {
                        try LayerReader.validate(at: layer, name: "registry.example/base@sha256:abc")
                    } throws: { error in
                        "\(error)".contains("registry.example/base@sha256:abc") && "\(error)".contains(message)
                    }
                }
            }
        }
    }
}
