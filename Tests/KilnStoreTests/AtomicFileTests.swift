import Foundation
import KilnTestSupport
import Testing

@testable import KilnStore

/// The durability seam for files: written beside the final name, published whole by a rename.
@Suite struct AtomicFileTests {
    @Test func anAtomicWriterPublishesAllOrNothing() async throws {
        try await withTemporaryDirectory("kiln-durable") { tmp in
            let path = tmp.path + "/file"
            let writer = try AtomicFileWriter(path: path)
            try Data("partial".utf8).withUnsafeBytes { try writer.write($0) }
            #expect(!FileManager.default.fileExists(atPath: path), "nothing under the final name before commit")
            try writer.reset()
            try Data("whole".utf8).withUnsafeBytes { try writer.write($0) }
            try writer.commit()
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "whole")
            let dropped = try AtomicFileWriter(path: path)
            try Data("other".utf8).withUnsafeBytes { try dropped.write($0) }
            dropped.discard()
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "whole")
            #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == ["file"], "no temporary left")
            #expect(throws: StoreError.self) {
                try AtomicFile.replace(path) { temp -> Void in
                    try Data("new".utf8).write(to: URL(fileURLWithPath: temp))
                    throw StoreError.io(path: temp, operation: "test", detail: "a writer that fails")
                }
            }
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "whole")
            #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == ["file"])
        }
    }
}
