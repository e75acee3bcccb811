import Foundation

/// The `kiln` executable built beside the test bundle, for tests that run the CLI as a user would.
public enum KilnBinary {
    public static var path: String {
        let exe =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The test runner may live inside a .xctest bundle directory.
        while dir.path != "/" && !FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("kiln").path)
        {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("kiln").path
    }

    /// Runs `kiln ARGS…`.
    @discardableResult
    public static func run(
        _ arguments: [String], environment: [String: String] = [:], directory: String? = nil, check: Bool = true
    ) throws -> CommandResult {
        try Shell.run([path] + arguments, environment: environment, directory: directory, check: check)
    }

    /// `kiln images --json --store STORE`: every stored `NAME:TAG` with its digest (none where no store exists:
    /// `kiln images` exits 2 there).
    public static func imageDigests(_ store: String) throws -> [String: String] {
        guard FileManager.default.fileExists(atPath: store + "/index.json") else { return [:] }
        struct Listing: Decodable {
            struct Image: Decodable {
                var reference: String
                var digest: String
            }
            var images: [Image]
        }
        let out = try run(["images", "--json", "--store", store]).stdout
        let listing = try JSONDecoder().decode(Listing.self, from: Data(out.utf8))
        return Dictionary(uniqueKeysWithValues: listing.images.map { ($0.reference, $0.digest) })
    }

    /// The package's root directory (for fixtures checked into Tests/).
    public static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url = url.deletingLastPathComponent() }
        return url.path
    }()
}
