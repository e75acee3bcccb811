import ArgumentParser
import Foundation
import KilnOCI
import KilnRegistry

struct Catalog: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the repositories of a registry (like `crane catalog`).",
        discussion: """
            Reads the registry's catalog (/v2/_catalog, every page). Many hosted registries do not offer it; \
            that is an error saying so (exit 2).

              kiln catalog registry.example.com
              kiln catalog 127.0.0.1:5000 --json
            """)

    @Argument(help: "The registry, as HOST[:PORT].") var registry: String
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var registry: String
        var repositories: [String]
    }

    func validate() throws {
        do { try Reference.validateRegistry(registry) } catch { throw ValidationError("\(error)") }
    }

    func run() async throws {
        let (client, transport) = try registryFlags.client(for: registry)
        let repositories: [String]
        do {
            repositories = try await client.catalog().sorted()
            await transport.shutdown()
        } catch {
            await transport.shutdown()
            throw error
        }
        if output.json { return try Output.json(Report(registry: registry, repositories: repositories)) }
        for repository in repositories { Output.line(repository) }
    }
}

struct Delete: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete a manifest from a registry by tag or digest (like `crane delete`).",
        discussion: """
            REF is REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:…. The manifest it names is deleted through the \
            registry's delete API, and with it every tag that points at it (the distribution API deletes \
            manifests, not single tags); its blobs stay until the registry's own garbage collection. A registry \
            that forbids deleting refuses, and nothing is deleted (exit 2).

              kiln delete registry.example.com/komodo/komodod:0.9.0-rc1
            """)

    @Argument(help: "The manifest, as REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:….") var reference: String
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var reference: String
        var registry: String
        var repository: String
        var digest: String
    }

    func run() async throws {
        let report = try await registryFlags.with(reference) { ref, client in
            let digest = try await client.delete(ref.repository, ref.identifier)
            return Report(
                reference: ref.description, registry: ref.registry, repository: ref.repository,
                digest: digest.description)
        }
        if output.json { return try Output.json(report) }
        Output.line("deleted \(report.registry)/\(report.repository)@\(report.digest)")
    }
}

struct BlobCommand: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        commandName: "blob",
        abstract: "Download one blob from a registry, verified (like `crane blob`).",
        discussion: """
            REF is REGISTRY/NAME@sha256:…, the digest of a layer or config (see `kiln inspect REF --json`). The \
            blob is checked against its digest before the file gets its name; -o - (the default) writes it to \
            standard output.

              kiln blob registry.example.com/komodo/komodod@sha256:… -o layer.tar.gz
            """)

    @Argument(help: "The blob, as REGISTRY/NAME@sha256:….") var reference: String
    @Option(name: .shortAndLong, help: "The file to write; - for standard output.") var output: String = "-"
    @OptionGroup var registryFlags: RegistryFlags

    func run() async throws {
        let target = output
        try await registryFlags.with(reference) { ref, client in
            guard let digest = ref.digest else {
                throw ValidationError("'\(reference)' names no blob: write REGISTRY/NAME@sha256:…")
            }
            guard let size = try await client.blobSize(ref.repository, digest) else {
                throw CommandFailure(
                    "no blob \(digest) in \(ref.registry)/\(ref.repository)\n    hint: a blob digest is a layer's or config's, not a manifest's (see `kiln inspect REF --json`)"
                )
            }
            let descriptor = Descriptor(mediaType: "application/octet-stream", digest: digest, size: size)
            let progress = ByteProgress(label: "downloading \(digest)")
            let report: @Sendable (Int64, Int64?) -> Void = { done, _ in progress.report(done, size) }
            guard target == "-" else {
                try await client.downloadBlob(ref.repository, descriptor, to: target, progress: report)
                Output.endProgress()
                Output.status("wrote \(target): \(Output.bytes(size)), \(digest)")
                return
            }
            let temp = FileManager.default.temporaryDirectory.path + "/kiln-blob-\(UUID().uuidString.lowercased())"
            defer { try? FileManager.default.removeItem(atPath: temp) }
            try await client.downloadBlob(ref.repository, descriptor, to: temp, progress: report)
            Output.endProgress()
            guard let handle = FileHandle(forReadingAtPath: temp) else {
                throw CommandFailure("cannot read the downloaded blob at \(temp)")
            }
            defer { try? handle.close() }
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                try FileHandle.standardOutput.write(contentsOf: chunk)
            }
        }
    }
}
