import Foundation
import KilnOCI
import Testing

@testable import KilnBuild

/// The stat-keyed digest cache's on-disk table.
@Suite struct FileDigestsTests {
    @Test func tableRoundTripsAndSkipsWhatItCannotHold() throws {
        let digest = Digest.sha256("x")
        let entries: [String: FileDigests.Entry] = [
            "/a/b.py": .init(stamp: .init(size: 1, mtimeNanos: 2, ctimeNanos: 3, inode: 4), digest: digest),
            "/with\ttab": .init(stamp: .init(size: 5, mtimeNanos: -6, ctimeNanos: 7, inode: 8), digest: digest),
            "/with\nnewline": .init(stamp: .init(size: 9, mtimeNanos: 9, ctimeNanos: 9, inode: 9), digest: digest),
        ]
        let decoded = FileDigests.decode(FileDigests.encode(entries))
        #expect(decoded.keys.sorted() == ["/a/b.py", "/with\ttab"])
        #expect(decoded["/with\ttab"]?.stamp == entries["/with\ttab"]?.stamp)
        #expect(decoded["/a/b.py"]?.digest == digest)
        // A damaged line costs a re-hash, never a wrong digest.
        let damaged = Data("1\t2\t3\t4\tnothex\t/x\n1\t2\t3\n".utf8)
        #expect(FileDigests.decode(damaged).isEmpty)
    }
}
