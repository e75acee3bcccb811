import Foundation
import KilnTestSupport
import Testing

@testable import KilnStore

/// The durability seam for directories: staged, then published whole under the final name, once.
@Suite struct StagedDirectoryTests {
    @Test func aStagedDirectoryIsPublishedWholeOnce() async throws {
        try await withTemporaryDirectory("kiln-durable") { tmp in
            let first = try StagedDirectory(in: tmp.path + "/slots")
            try "one".write(toFile: first.path + "/f", atomically: false, encoding: .utf8)
            try first.publish(as: tmp.path + "/slots/abc")
            let second = try StagedDirectory(in: tmp.path + "/slots")
            try "two".write(toFile: second.path + "/f", atomically: false, encoding: .utf8)
            try second.publish(as: tmp.path + "/slots/abc")
            #expect(try String(contentsOfFile: tmp.path + "/slots/abc/f", encoding: .utf8) == "one", "first one wins")
            #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path + "/slots") == ["abc"])
            try FileManager.default.createDirectory(
                atPath: tmp.path + "/slots/.staging-999999999-7/x", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(
                atPath: tmp.path + "/slots/.tmp-999999999-8", withIntermediateDirectories: true)
            #expect(StagedDirectory.removeStale(in: tmp.path + "/slots").count == 2)
            #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path + "/slots") == ["abc"])
        }
    }
}
