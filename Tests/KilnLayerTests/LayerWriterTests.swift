import Foundation
import KilnOCI
import KilnTestSupport
import Synchronization
import Testing

@testable import KilnLayer

// A class, so each test's scratch directory goes with the instance Swift Testing makes for it (deinit).
@Suite final class LayerWriterTests {
    let tmp: TemporaryDirectory

    init() throws { tmp = try TemporaryDirectory("kiln-layer") }
    deinit { tmp.remove() }

    func sampleEntries(_ dir: TemporaryDirectory) throws -> [LayerEntry] {
        let tool = try dir.write("src/tool", "#!/bin/sh\necho hi\n", mode: 0o700)
        let readme = try dir.write("src/readme.txt", "hello\n", mode: 0o600)
        return [
            LayerEntry(path: "/usr/local/bin/tool", kind: .file(.path(tool)), mode: 0o755),
            LayerEntry(path: "/etc/motd", kind: .file(.bytes(Data("welcome\n".utf8))), mode: 0o644),
            LayerEntry(path: "/home/komodo", kind: .directory, mode: 0o750, uid: 3003, gid: 3003),
            LayerEntry(path: "/usr/share/doc/readme.txt", kind: .file(.path(readme)), mode: 0o644),
            LayerEntry(path: "/usr/bin/tool", kind: .symlink(target: "../local/bin/tool"), mode: 0o777),
            LayerEntry(
                path: "/usr/share/doc/same.txt", kind: .hardlink(target: "/usr/share/doc/readme.txt"), mode: 0o644),
        ]
    }

    func listing(_ path: String, gzip: Bool = true) throws -> [String] {
        try Shell.run(["tar", gzip ? "-tvzf" : "-tvf", path, "--numeric-owner"]).stdout.split(separator: "\n").map {
            // permissions owner size date time name…
            let f = $0.split(separator: " ", omittingEmptySubsequences: true)
            return ([f[0], f[1]] + f[5...]).joined(separator: " ")
        }
    }

    @Test func goldenLayer() throws {
        let result = try LayerWriter.write(
            entries: try sampleEntries(tmp), to: tmp.path + "/layer.tar.gz", options: LayerOptions(threads: 2))
        // Frozen by the determinism contract (encoding version 5): a change here is a format change.
        #expect(result.diffID.description == "sha256:12f286da5a1474d1708e7ea653f4e12e87a082f6725454fac621635064ad7713")
        #expect(
            result.descriptor.digest.description
                == "sha256:0efefde673d1ddb37218e4b940d03f0e5fb045adb8d8be761c4069165db5185c")
        #expect(result.descriptor.mediaType == MediaType.layerGzip)
        #expect(
            result.descriptor.size
                == Int64(try Data(contentsOf: URL(fileURLWithPath: tmp.path + "/layer.tar.gz")).count))
    }

    @Test func entriesAreSortedWithParentsFirstAndNormalised() throws {
        _ = try LayerWriter.write(
            entries: try sampleEntries(tmp), to: tmp.path + "/l.tgz", options: LayerOptions(mtime: 0))
        #expect(
            try listing(tmp.path + "/l.tgz") == [
                "drwxr-xr-x 0/0 etc/",
                "-rw-r--r-- 0/0 etc/motd",
                "drwxr-xr-x 0/0 home/",
                "drwxr-x--- 3003/3003 home/komodo/",
                "drwxr-xr-x 0/0 usr/",
                "drwxr-xr-x 0/0 usr/bin/",
                "lrwxrwxrwx 0/0 usr/bin/tool -> ../local/bin/tool",
                "drwxr-xr-x 0/0 usr/local/",
                "drwxr-xr-x 0/0 usr/local/bin/",
                "-rwxr-xr-x 0/0 usr/local/bin/tool",
                "drwxr-xr-x 0/0 usr/share/",
                "drwxr-xr-x 0/0 usr/share/doc/",
                "-rw-r--r-- 0/0 usr/share/doc/readme.txt",
                "hrw-r--r-- 0/0 usr/share/doc/same.txt link to usr/share/doc/readme.txt",
            ])
        let verbose = try Shell.run(["tar", "--full-time", "-tvzf", tmp.path + "/l.tgz"]).stdout
        #expect(verbose.contains("1970-01-01 00:00:00"))
    }

    @Test func diffIDIsTheHashOfTheDecompressedTar() throws {
        let r = try LayerWriter.write(entries: try sampleEntries(tmp), to: tmp.path + "/l.tgz")
        let sum = try Shell.run(["sh", "-c", "gunzip -c '\(tmp.path)/l.tgz' | sha256sum"]).stdout.prefix(64)
        #expect("sha256:" + sum == r.diffID.description)
        let blobSum = try Shell.run(["sha256sum", tmp.path + "/l.tgz"]).stdout.prefix(64)
        #expect("sha256:" + blobSum == r.descriptor.digest.description)
    }

    @Test func sameBytesWhateverTheSourceTreeLooksLike() async throws {
        try await withTemporaryDirectory("kiln-a") { a in
            try await withTemporaryDirectory("kiln-b") { b in
                let ra = try LayerWriter.write(entries: try sampleEntries(a), to: a.path + "/l.tgz")
                // Different directory, mtimes and permission bits on the source files.
                let entries = try sampleEntries(b)
                try Shell.run(["touch", "-d", "2001-02-03", b.path + "/src/tool", b.path + "/src/readme.txt"])
                try Shell.run(["chmod", "0644", b.path + "/src/readme.txt"])
                let rb = try LayerWriter.write(entries: entries.reversed(), to: b.path + "/l.tgz")
                #expect(ra == rb)
            }
        }
    }

    @Test func outputIsIdenticalForAnyThreadCount() throws {
        // Mixed content over several chunks: text, random, zeros.
        var data = Data()
        for i in 0..<40_000 { data.append(contentsOf: "line \(i) of some ordinary text\n".utf8) }
        var rng = SystemRandomNumberGenerator()
        data.append(contentsOf: (0..<3_000_000).map { _ in UInt8.random(in: 0...255, using: &rng) })
        data.append(Data(count: 2_000_000))
        try data.write(to: URL(fileURLWithPath: tmp.path + "/mixed.bin"))
        let entries = [LayerEntry(path: "data/mixed.bin", kind: .file(.path(tmp.path + "/mixed.bin")), mode: 0o644)]
        let results = try [1, 2, 8].map { (threads: Int) in
            try LayerWriter.write(
                entries: entries, to: tmp.path + "/t\(threads).tgz", options: LayerOptions(threads: threads))
        }
        #expect(results[0] == results[1] && results[1] == results[2])
        let sum = try Shell.run(["sh", "-c", "gunzip -c '\(tmp.path)/t8.tgz' | sha256sum"]).stdout.prefix(64)
        #expect("sha256:" + sum == results[0].diffID.description)
        // Python's gzip reader agrees (multi-member streams are standard gzip).
        try Shell.run([
            "python3", "-c",
            "import gzip,hashlib,sys; d=gzip.open(sys.argv[1]).read(); assert 'sha256:'+hashlib.sha256(d).hexdigest()==sys.argv[2]",
            tmp.path + "/t2.tgz", results[0].diffID.description,
        ])
    }

    @Test func filesNamedInHashingAreHashedAsTheyAreWritten() throws {
        // Sizes around the read buffer (1 MiB): empty, one byte, exactly one buffer, several buffers and a tail.
        let sizes = [0, 1, 1 << 20, 5 * (1 << 20) + 17, 4096]
        var rng = SystemRandomNumberGenerator()
        var entries: [LayerEntry] = []
        var expected: [String: Digest] = [:]
        for (index, size) in sizes.enumerated() {
            let data = Data((0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) })
            let path = tmp.path + "/in\(index).bin"
            try data.write(to: URL(fileURLWithPath: path))
            entries.append(LayerEntry(path: "data/in\(index).bin", kind: .file(.path(path)), mode: 0o644))
            if index != 2 { expected[path] = Digest.sha256(data) }  // one file is written but not hashed
        }
        let hashed = try LayerWriter.write(
            entries: entries, to: tmp.path + "/h.tgz", options: LayerOptions(threads: 2),
            hashing: Set(expected.keys))
        #expect(hashed.fileDigests == expected)
        // Hashing on the side changes nothing in the layer.
        let plain = try LayerWriter.write(entries: entries, to: tmp.path + "/p.tgz", options: LayerOptions(threads: 2))
        #expect(plain.fileDigests.isEmpty)
        #expect(plain.diffID == hashed.diffID && plain.descriptor == hashed.descriptor)
    }

    @Test func smallFilesHashedTogetherKeepTheirOwnDigests() throws {
        // Many files share one hashing batch; some fill a batch up to its end or just over it (the batch is
        // the 1 MiB read buffer, a file starts a new one when less than 64 KiB is left); empty files fall
        // between them, one ends the layer.
        var sizes = [0, 0, 3, 1000, 65_535, 65_536, 65_537, 0, 900_000, 200_000, (1 << 20) - 1, 1, 0]
        sizes += (0..<300).map { 1 + ($0 * 7919) % 20_000 } + [0]
        var rng = SystemRandomNumberGenerator()
        var entries: [LayerEntry] = []
        var expected: [String: Digest] = [:]
        for (index, size) in sizes.enumerated() {
            let data = Data((0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) })
            let path = tmp.path + "/small\(index).bin"
            try data.write(to: URL(fileURLWithPath: path))
            entries.append(
                LayerEntry(path: String(format: "data/f%04d", index), kind: .file(.path(path)), mode: 0o644))
            if index % 5 != 4 { expected[path] = Digest.sha256(data) }  // some are written but not hashed
        }
        let hashed = try LayerWriter.write(
            entries: entries, to: tmp.path + "/s.tgz", options: LayerOptions(threads: 2), hashing: Set(expected.keys))
        #expect(hashed.fileDigests == expected)
        let plain = try LayerWriter.write(entries: entries, to: tmp.path + "/sp.tgz", options: LayerOptions(threads: 2))
        #expect(plain.diffID == hashed.diffID && plain.descriptor == hashed.descriptor)
    }

    @Test func inspectionSeesTheFirstBytesOfEveryFileFromTheWritersReads() throws {
        // Sizes around the header's and the hashing batch's edges, hashed and not, and in-memory entries.
        let sizes = [0, 1, 19, 20, 21, 65_535, 65_537, 900_000, 200_000, 5]
        var entries = [LayerEntry(path: "motd", kind: .file(.bytes(Data("hi\n".utf8))), mode: 0o644)]
        var expected: [String: [UInt8]] = [:]
        for (index, size) in sizes.enumerated() {
            let data = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) })
            let path = tmp.path + "/i\(index).bin"
            try data.write(to: URL(fileURLWithPath: path))
            entries.append(LayerEntry(path: "data/i\(index)", kind: .file(.path(path)), mode: 0o644))
            expected[path] = Array(data.prefix(20))
        }
        let seen = Mutex<[String: [UInt8]]>([:])
        let inspected = try LayerWriter.write(
            entries: entries, to: tmp.path + "/i.tgz", options: LayerOptions(threads: 2),
            hashing: Set(expected.keys.filter { $0.hasSuffix("1.bin") || $0.hasSuffix("5.bin") }),
            inspecting: LayerInspection(headerSize: 20) { path, header in seen.withLock { $0[path] = header } })
        #expect(seen.withLock { $0 } == expected)
        let plain = try LayerWriter.write(entries: entries, to: tmp.path + "/ip.tgz", options: LayerOptions(threads: 2))
        #expect(plain.descriptor == inspected.descriptor)

        // A check that refuses a file stops the write with its error.
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try LayerWriter.write(
                entries: entries, to: tmp.path + "/r.tgz",
                inspecting: LayerInspection(headerSize: 20) { _, header in if header.count == 20 { throw Refused() } })
        }
    }

    @Test func pathsOrderBytewiseAndNormaliseAsBefore() throws {
        // Bytewise: a prefix first, "Z" (0x5A) before "a", "é" (0xC3 0xA9) after every ASCII byte.
        let ordered = ["", "a", "a/b", "a0", "aé", "b", "ab"].sorted(by: LayerPath.precedes)
        #expect(ordered == ["", "a", "a/b", "a0", "ab", "aé", "b"])
        #expect(LayerPath.precedes("Zebra", "apple") && !LayerPath.precedes("apple", "apple"))
        // Already-normal paths (one pass) and paths that need the general rules give what they always gave.
        let cases = [
            ("/usr/bin/x", "usr/bin/x"), ("usr/bin/x", "usr/bin/x"), ("/usr//bin/./x/", "usr/bin/x"),
            ("/", ""), ("", ""), ("./a", "a"), ("a/.well-known", "a/.well-known"), ("/a/.w", "a/.w"),
            ("/a/..b", "a/..b"), ("/données/é", "données/é"),
        ]
        for (path, normal) in cases { #expect(try LayerPath.normalise(path) == normal) }
        #expect(throws: LayerError.pathEscapesRoot("/a/../b")) { try LayerPath.normalise("/a/../b") }
        #expect(throws: LayerError.reservedName("/a/.wh.b")) { try LayerPath.normalise("/a/.wh.b") }
        #expect(try LayerPath.normalise("/a/.wh.b", whiteouts: true) == "a/.wh.b")
    }

    @Test func compressionVariants() throws {
        let entries = try sampleEntries(tmp)
        let zstd = try LayerWriter.write(
            entries: entries, to: tmp.path + "/l.zst", options: LayerOptions(compression: .zstd))
        let none = try LayerWriter.write(
            entries: entries, to: tmp.path + "/l.tar", options: LayerOptions(compression: .none))
        #expect(zstd.descriptor.mediaType == MediaType.layerZstd)
        #expect(none.descriptor.mediaType == MediaType.layerTar)
        #expect(zstd.diffID == none.diffID)
        #expect(none.descriptor.digest == none.diffID)
        let sum = try Shell.run(["sh", "-c", "zstd -dc '\(tmp.path)/l.zst' | sha256sum"]).stdout.prefix(64)
        #expect("sha256:" + sum == zstd.diffID.description)
    }

    @Test func refusesBadPaths() throws {
        let out = tmp.path + "/bad.tgz"
        func write(_ e: [LayerEntry]) throws { _ = try LayerWriter.write(entries: e, to: out) }
        #expect(throws: LayerError.pathEscapesRoot("/etc/../../x")) {
            try write([LayerEntry(path: "/etc/../../x", kind: .directory, mode: 0o755)])
        }
        #expect(throws: LayerError.reservedName("/etc/.wh.passwd")) {
            try write([LayerEntry(path: "/etc/.wh.passwd", kind: .file(.bytes(Data())), mode: 0o644)])
        }
        #expect(throws: LayerError.conflictingEntries(path: "etc/a")) {
            try write([
                LayerEntry(path: "/etc/a", kind: .file(.bytes(Data("1".utf8))), mode: 0o644),
                LayerEntry(path: "/etc/a", kind: .file(.bytes(Data("2".utf8))), mode: 0o644),
            ])
        }
        #expect(throws: LayerError.conflictingEntries(path: "etc")) {
            try write([
                LayerEntry(path: "/etc", kind: .file(.bytes(Data())), mode: 0o644),
                LayerEntry(path: "/etc/a", kind: .file(.bytes(Data())), mode: 0o644),
            ])
        }
        #expect(throws: LayerError.hardlinkTargetMissing(path: "a", target: "b")) {
            try write([LayerEntry(path: "a", kind: .hardlink(target: "b"), mode: 0o644)])
        }
    }

    @Test func nonASCIINamesAreWrittenAsUTF8() throws {
        // Names like ca-certificates' "NetLock_Arany_=Class_Gold=_Főtanúsítvány.crt", whatever the process locale.
        let name = "usr/share/ca-certificates/F\u{151}tan\u{FA}s\u{ED}tv\u{E1}ny.crt"
        _ = try LayerWriter.write(
            entries: [LayerEntry(path: "/" + name, kind: .file(.bytes(Data("pem\n".utf8))), mode: 0o644)],
            to: tmp.path + "/u.tar", options: LayerOptions(compression: .none))
        let listing = try Shell.run(["tar", "-tf", tmp.path + "/u.tar"], environment: ["LC_ALL": "C.UTF-8"]).stdout
        #expect(listing.split(separator: "\n").map(String.init).contains(name))
    }

    @Test func missingSourceFileNamesThePath() throws {
        #expect(throws: LayerError.unreadableFile(path: "/nonexistent/x", reason: "No such file or directory")) {
            _ = try LayerWriter.write(
                entries: [LayerEntry(path: "x", kind: .file(.path("/nonexistent/x")), mode: 0o644)],
                to: tmp.path + "/m.tgz")
        }
    }
}

/// Archives given as inputs: hostile member paths and links are refused before anything is unpacked.
@Suite struct ArchiveReaderTests {
    /// Writes the tar.gz `script` describes in a fresh directory and hands `body` the directory and the archive's
    /// path; the directory is removed afterwards.
    func withArchive<T>(_ script: String, _ body: (TemporaryDirectory, String) async throws -> T) async throws -> T {
        try await withTemporaryDirectory("kiln-archive") { tmp in
            let path = tmp.path + "/a.tar.gz"
            try Shell.run([
                "python3", "-c", "import tarfile, io\nt = tarfile.open('\(path)', 'w:gz')\n" + script + "\nt.close()",
            ])
            return try await body(tmp, path)
        }
    }

    func members(_ path: String) throws -> [ArchiveEntry] {
        let reader = try ArchiveReader(path: path)
        var result: [ArchiveEntry] = []
        while let member = try reader.next() { result.append(member) }
        return result
    }

    static let addFile = """
        def add(name, data=b'x', kind=tarfile.REGTYPE, link=''):
            i = tarfile.TarInfo(name); i.type = kind; i.linkname = link; i.size = len(data) if kind == tarfile.REGTYPE else 0
            t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        """

    @Test func readsMembersAndContent() async throws {
        try await withArchive(
            Self.addFile
                + "\nadd('dir/bin/komodod', b'hello')\nadd('dir/link', kind=tarfile.SYMTYPE, link='bin/komodod')"
        ) { tmp, path in
            let reader = try ArchiveReader(path: path)
            let first = try #require(try reader.next())
            #expect(first.path == "dir/bin/komodod")
            var content = Data()
            try reader.readContent { content.append(contentsOf: $0) }
            #expect(String(decoding: content, as: UTF8.self) == "hello")
            #expect(
                try reader.next()
                    == ArchiveEntry(path: "dir/link", kind: .symlink, mode: 0o777, linkTarget: "bin/komodod"))
            #expect(try reader.next() == nil)
        }
    }

    @Test(arguments: [
        "add('../evil')",
        "add('a/../../evil')",
        "add('/etc/passwd')",
        "add('a/link', kind=tarfile.SYMTYPE, link='/etc/shadow')",
        "add('a/link', kind=tarfile.SYMTYPE, link='../../etc')",
        "add('a/hard', kind=tarfile.LNKTYPE, link='/etc/passwd')",
    ])
    func refusesMembersThatEscape(_ line: String) async throws {
        // Spelled out: a closure whose only `try`s sit inside #expect is not inferred to throw.
        try await withArchive(Self.addFile + "\nadd('ok', b'fine')\n" + line) { (tmp, path) throws -> Void in
            #expect(throws: LayerError.self) { try members(path) }
        }
    }

    @Test func refusesWhatIsNotAnArchive() async throws {
        try await withTemporaryDirectory("kiln-archive") { tmp in
            let path = try tmp.write("x.zip", "this is not a zip file, just text that goes on for a while.....")
            #expect(throws: LayerError.self) { try members(path) }
        }
    }
}
