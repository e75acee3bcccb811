import Foundation
import KilnBuild
import KilnOCI
import KilnRelease
import KilnStore
import KilnTestSupport
import Testing

/// The JSON files Kiln reads (the lock, release documents, a stored index, manifest and config): a broken one
/// is named by file, line, column and key, never by Foundation's `DecodingError` text; hostile ones end in
/// such an error quickly; a seeded fuzz of all of them finds no crash, hang or error without a location.
@Suite struct JSONReadersTests {
    static let digest = "sha256:" + String(repeating: "ab", count: 32)

    static let lock = """
        {
          "images" : {
            "komodod:0.9.0" : "\(digest)"
          },
          "inputs" : {
            "https://example.com/a.zip" : "\(digest)"
          },
          "lockVersion" : 1,
          "packageRequests" : {
            "debian-runtime/libs" : "bookworm main amd64: libc6"
          },
          "packages" : {
            "debian-runtime/libs" : [
              {
                "architecture" : "amd64",
                "filename" : "pool/main/g/glibc/libc6_2.36-9_amd64.deb",
                "name" : "libc6",
                "sha256" : "\(String(repeating: "cd", count: 32))",
                "version" : "2.36-9"
              }
            ]
          }
        }

        """

    static let release = """
        {
          "created" : "2026-01-01T00:00:00Z",
          "images" : [
            {
              "digest" : "\(digest)",
              "mediaType" : "application/vnd.oci.image.manifest.v1+json",
              "name" : "komodod",
              "reference" : "registry.example/komodo/komodod@\(digest)",
              "repository" : "komodo/komodod",
              "tags" : ["0.9.0"]
            }
          ],
          "movingTags" : ["stable"],
          "namespace" : "komodo",
          "registry" : "registry.example",
          "releaseFormat" : 1,
          "version" : "0.9.0"
        }

        """

    static let manifest = """
        {"config":{"digest":"\(digest)","mediaType":"application/vnd.oci.image.config.v1+json","size":512},\
        "layers":[{"digest":"\(digest)","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":1024}],\
        "mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}
        """

    static let index = """
        {"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"komodod:0.9.0"},"digest":"\(digest)",\
        "mediaType":"application/vnd.oci.image.manifest.v1+json","platform":{"architecture":"amd64","os":"linux"},\
        "size":400}],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}
        """

    static let config = """
        {"architecture":"amd64","config":{"Cmd":["-printtoconsole"],"Env":["PATH=/usr/bin"],\
        "ExposedPorts":{"7770/tcp":{}},"User":"komodo"},"created":"1970-01-01T00:00:00Z",\
        "history":[{"created_by":"kiln"}],"os":"linux","rootfs":{"diff_ids":["\(digest)"],"type":"layers"}}
        """

    /// Every reader, by the name a failure is reported under; each throws or returns.
    static let readers: [(String, @Sendable (Data) throws -> Void)] = [
        ("kiln.lock", { _ = try CanonicalJSON.decode(LockFile.self, from: $0, path: "recipes/kiln.lock") }),
        ("release", { _ = try ReleaseDocument.decode($0, source: "releases/0.9.0.json") }),
        ("manifest", { _ = try CanonicalJSON.decode(Manifest.self, from: $0, path: "blobs/sha256/m") }),
        ("index", { _ = try CanonicalJSON.decode(ImageIndex.self, from: $0, path: "index.json") }),
        ("config", { _ = try CanonicalJSON.decode(ImageConfig.self, from: $0, path: "blobs/sha256/c") }),
    ]

    @Test func seedsDecode() throws {
        for (name, text) in [
            ("kiln.lock", Self.lock), ("release", Self.release), ("manifest", Self.manifest), ("index", Self.index),
            ("config", Self.config),
        ] {
            let read = try #require(Self.readers.first { $0.0 == name }).1
            #expect(throws: Never.self, "\(name)") { try read(Data(text.utf8)) }
        }
    }

    func lockError(_ text: String) async throws -> String {
        try await withTemporaryDirectory("kiln-lock") { dir in
            let lock = try dir.write("kiln.lock", text)
            do {
                _ = try LockFile.load(lock)
                return "loaded"
            } catch {
                return "\(error)".replacingOccurrences(of: dir.path + "/", with: "")
            }
        }
    }

    static let brokenLocks: [(String, String, String)] = [
        (
            #""https://example.com/a.zip" : "\#(digest)""#, #""https://example.com/a.zip" : 7"#,
            #"kiln.lock:6:35: expected a string, found a number (at inputs["https://example.com/a.zip"])"#
        ),
        (
            #""komodod:0.9.0" : "\#(digest)""#, #""komodod:0.9.0" : "sha256:abc""#,
            #"kiln.lock:3:23: 'sha256:abc' is not a digest: write it as sha256: followed by 64 lower-case hex digits (at images["komodod:0.9.0"])"#
        ),
        (#""lockVersion" : 1,"#, "", #"kiln.lock:1:1: missing key "lockVersion""#),
        (
            #""name" : "libc6","#, #""name" : ["libc6"],"#,
            #"kiln.lock:17:18: expected a string, found a list (at packages["debian-runtime/libs"][0].name)"#
        ),
        (#""lockVersion" : 1,"#, #""lockVersion" : 1"#, "kiln.lock:9:3: not JSON: expected ',' or '}' in an object"),
    ]

    @Test(arguments: 0..<brokenLocks.count) func brokenLockIsNamedByLineColumnAndKey(_ index: Int) async throws {
        let (find, replace, expected) = Self.brokenLocks[index]
        #expect(Self.lock.contains(find))
        let text = Self.lock.replacingOccurrences(of: find, with: replace)
        let actual = try await lockError(text)
        #expect(
            actual
                == expected + ": not a valid kiln lock file. Restore it from git, or delete it and run `kiln lock`.")
    }

    @Test func releaseDocumentErrorsNameTheLine() throws {
        let broken = Self.release.replacingOccurrences(of: #""version" : "0.9.0""#, with: #""version" : null"#)
        #expect(throws: ReleaseError.self) { try ReleaseDocument.decode(Data(broken.utf8), source: "releases/x.json") }
        do {
            _ = try ReleaseDocument.decode(Data(broken.utf8), source: "releases/x.json")
        } catch {
            #expect(
                "\(error)"
                    == "releases/x.json is not a kiln release document: line 17, column 15 (version): expected a string, found null"
            )
        }
    }

    /// Generated hostile documents: each ends in a located error, quickly.
    static let hostile: [(String, @Sendable () -> [UInt8], String)] = [
        (
            "deep nesting", { Array(String(repeating: "[", count: 100_000).utf8) },
            "1:513: not JSON: nested deeper than 512 levels"
        ),
        (
            "deep objects", { Array(String(repeating: "{\"a\":", count: 10_000).utf8) },
            "1:2561: not JSON: nested deeper than 512 levels"
        ),
        ("truncated", { Array(lock.utf8.prefix(200)) }, "not JSON: the document ends inside"),
        ("empty", { [] }, "1:1: the file is empty"),
        (
            "not UTF-8",
            {
                Array(lock.replacingOccurrences(of: "libc6\"", with: "libc\u{E9}\"").utf8).map {
                    $0 == 0xC3 ? 0xFF : $0
                }.filter { $0 != 0xA9 }
            }, "not JSON: byte 0xff is not UTF-8"
        ),
        (
            "huge string", { Array(("{\"lockVersion\": \"" + String(repeating: "x", count: 4 << 20) + "\"}").utf8) },
            "1:17: expected a whole number, found a string"
        ),
        (
            "huge number", { Array(("{\"lockVersion\": 1" + String(repeating: "0", count: 10_000) + "}").utf8) },
            "1:17: a number too large to read"
        ),
        (
            "a million keys", { Array(("{" + (0..<200_000).map { "\"k\($0)\":0" }.joined(separator: ",") + "}").utf8) },
            "1:1: missing key \"lockVersion\""
        ),
    ]

    @Test(arguments: 0..<hostile.count) func hostileLock(_ index: Int) throws {
        let (name, make, expected) = Self.hostile[index]
        let bytes = make()
        let start = Fuzzer.threadCPUSeconds
        let error = try #require(throws: JSONDocumentError.self, "\(name)") {
            _ = try CanonicalJSON.decode(LockFile.self, from: Data(bytes), path: "kiln.lock")
        }
        #expect("\(error)".contains(expected), "\(name): \(error)")
        #expect(Fuzzer.threadCPUSeconds - start < 8, "\(name)")
    }

    @Test func mutatedDocumentsEndInValuesOrLocatedErrors() throws {
        let seeds =
            [Self.lock, Self.release, Self.manifest, Self.index, Self.config].map { Array($0.utf8) }
            + [Array(try Data(contentsOf: URL(fileURLWithPath: KilnBinary.packageRoot + "/recipes/assetchains.json")))]
        let tokens = [
            "{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "\\ud800", "null", "true", "-", "1e999", "0.",
            "\"sha256:\"",
            "\"mediaType\":", "\"schemaVersion\":3,", " ", "\n",
        ]
        var fuzzer = Fuzzer(seed: Fuzzer.seed, seeds: seeds, tokens: tokens)
        let cases = Fuzzer.cases(default: 1000)
        var (accepted, refused, slowest, slowestCase) = (0, 0, 0.0, 0)
        var failures = 0
        for index in 0..<cases {
            let bytes = fuzzer.next()
            let (name, read) = Self.readers[index % Self.readers.count]
            let start = Fuzzer.threadCPUSeconds
            var failure: String?
            do {
                try read(Data(bytes))
                accepted += 1
            } catch let error as JSONDocumentError {
                refused += 1
                let lines = bytes.reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
                if error.line < 1 || error.line > lines || error.column < 1 {
                    failure = "location outside the file: \(error)"
                }
                if error.message.contains("DecodingError") || error.message.contains("Error Domain") {
                    failure = "raw error text: \(error)"
                }
            } catch ReleaseError.invalidDocument(_, let reason) {
                refused += 1
                if !reason.hasPrefix("line ") { failure = "no location: \(reason)" }
            } catch {
                failure = "not a located error: \(type(of: error)) \(error)"
            }
            let seconds = Fuzzer.threadCPUSeconds - start
            if seconds > slowest { (slowest, slowestCase) = (seconds, index) }
            if seconds > 1 { _ = Fuzzer.save(bytes, name: "slow-json-\(Fuzzer.seed)-\(index)-\(name)") }
            if seconds > 8 { failure = "took \(seconds) s" }
            if let failure {
                let saved = Fuzzer.save(bytes, name: "json-\(Fuzzer.seed)-\(index).json")
                Issue.record("case \(index) (\(name), seed \(Fuzzer.seed), input \(saved)): \(failure)")
                failures += 1
                if failures == 5 { return }
            }
        }
        print(
            "JSON fuzz: \(cases) cases, seed \(Fuzzer.seed): \(accepted) decoded, \(refused) refused with located "
                + "errors, slowest \(String(format: "%.3f", slowest)) s (case \(slowestCase)), peak memory \(Fuzzer.peakMemory >> 20) MB"
        )
        #expect(accepted > 0 && refused > 0)
    }
}
