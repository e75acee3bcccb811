import Foundation
import KilnHTTP
import KilnLayer
import KilnOCI
import KilnProcess
import KilnRegistry
import KilnSandbox
import KilnStore
import Logging

/// Build-step outputs shared through registries (`--cache-from`, `--cache-to`), by compile key
/// (`Pipeline.compileKey`): an entry's record is the step's `outputs.json` (every output file with its mode and
/// sha256), its blob the outputs directory as a gzip tar. A fetched entry is unpacked into staging and used only
/// when what it unpacks to is exactly what its `outputs.json` records; else it is refused with a warning and
/// the step runs here.
struct RegistryBuildOutputs: Sendable {
    let from: [RegistryCache]
    let to: RegistryCache?
    let logger: Logger

    init?(options: BuildOptions, transport: HTTPTransport) throws {
        guard let (from, to) = try options.registryCaches(transport: transport) else { return nil }
        self.from = from
        self.to = to
        logger = options.logger
    }

    /// Whether some `--cache-from` repository holds an entry under `key` (its content is checked when fetched).
    func has(_ key: String) async -> Bool {
        for cache in from {
            if case .hit = try? await cache.get(.build, key: key) { return true }
        }
        return false
    }

    /// Unpacks the outputs under `key` from the first `--cache-from` repository with a sound entry into
    /// `result` (a new directory, `outputs.json` last); the repository's name, or nil.
    func fetch(_ key: String, into result: String, step: String) async -> String? {
        for cache in from {
            let place = cache.repository.location
            do {
                let entry: RegistryCache.Entry
                switch try await cache.get(.build, key: key) {
                case .hit(let found): entry = found
                case .miss: continue
                case .refused(let why):
                    logger.warning("build cache entry refused (\(place)): \(why); \(step) runs here")
                    continue
                }
                guard entry.blobs.count == 1, let blob = entry.blobs.first else {
                    throw Refusal("it lists \(entry.blobs.count) blobs, not one")
                }
                let recorded = try JSONDecoder().decode([String: String].self, from: entry.record)
                let archive = result + ".tar"
                defer { unlink(archive) }
                try await cache.download(blob, to: archive)
                HostTree.remove(result)
                let entries = try ArchiveExtractor.extract(
                    ArchiveReader(
                        path: archive, name: "\(place) build \(key.prefix(12))", format: .tar, policy: .layer),
                    into: result)
                for entry in entries where entry.kind == .file {
                    chmod(result + "/" + entry.path, mode_t(entry.mode & 0o7777))
                }
                let unpacked = try StepOutputs.listing(result) { try FileDigests.hash($0) }
                guard unpacked == recorded else {
                    let differs = Set(unpacked.keys).union(recorded.keys).sorted().first {
                        unpacked[$0] != recorded[$0]
                    }
                    throw Refusal(
                        "its content does not match what its key recorded (\(differs ?? "?"): "
                            + "\(unpacked[differs ?? ""] ?? "absent") vs \(recorded[differs ?? ""] ?? "absent"))")
                }
                try AtomicFile.write(entry.record, to: result + "/outputs.json")
                return place
            } catch {
                HostTree.remove(result)
                logger.warning(
                    "build cache entry \(key.prefix(12)) in \(place) refused: \(error); \(step) runs here")
            }
        }
        return nil
    }

    /// Publishes the outputs in `directory` (a stored result) under `key` to `--cache-to`. A failure is a warning.
    func publish(_ directory: String, key: String, staging: String) async {
        guard let to else { return }
        let archive = staging + "/.publish-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tar.gz"
        defer { unlink(archive) }
        do {
            guard let record = FileManager.default.contents(atPath: directory + "/outputs.json") else { return }
            let listing = try JSONDecoder().decode([String: String].self, from: record)
            var entries: [LayerEntry] = []
            for (path, value) in listing {
                let mode = UInt32(value.split(separator: " ").first ?? "644", radix: 8) ?? 0o644
                entries.append(
                    LayerEntry(path: String(path.dropFirst()), kind: .file(.path(directory + path)), mode: mode))
            }
            let written = try await Blocking.run("kiln-layer") { [entries] in
                try LayerWriter.write(entries: entries, to: archive, options: LayerOptions(compression: .gzip))
            }
            try await to.put(.build, key: key, record: record, blobs: [(written.descriptor, archive)])
        } catch {
            logger.warning("could not publish build \(key.prefix(12)) to \(to.repository.location): \(error)")
        }
    }
}

/// Why a build cache entry is not used (the step then runs here): logged as a warning, never a build failure.
private struct Refusal: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
