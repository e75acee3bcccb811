import ArgumentParser
import Foundation
import KilnOCI
import KilnRegistry

extension RegistryFlags {
    /// A parsed reference (a usage error when malformed) and a client for its registry, shut down after `body`.
    func with<T>(_ text: String, _ body: (Reference, RegistryClient) async throws -> T) async throws -> T {
        let reference: Reference
        do { reference = try Reference(parsing: text) } catch { throw ValidationError("\(error)") }
        let (client, transport) = try client(for: reference.registry)
        do {
            let result = try await body(reference, client)
            await transport.shutdown()
            return result
        } catch {
            await transport.shutdown()
            throw error
        }
    }
}

struct Ls: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tags of a repository in a registry (like `crane ls`).",
        discussion: """
            REPO is REGISTRY/NAME (a tag or digest given is ignored). Tags are printed one a line, sorted, \
            including the sha256-<digest> tags that carry SBOMs for registries without a referrers API.

              kiln ls registry.example.com/komodo/komodod
              kiln ls 127.0.0.1:5000/test/app --json
            """)

    @Argument(help: "The repository, as REGISTRY/NAME.") var repository: String
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var registry: String
        var repository: String
        var tags: [String]
    }

    func run() async throws {
        let report = try await registryFlags.with(repository) { ref, client in
            Report(
                registry: ref.registry, repository: ref.repository,
                tags: try await client.tags(ref.repository).sorted())
        }
        if output.json { return try Output.json(report) }
        for tag in report.tags { Output.line(tag) }
    }
}

struct DigestCommand: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        commandName: "digest",
        abstract: "Print the digest a registry serves for a reference (like `crane digest`).",
        discussion: """
            The digest of the manifest or index REF names, computed from the bytes served (and checked against \
            the registry's Docker-Content-Digest): the value to pin as REGISTRY/NAME@sha256:….

              kiln digest registry.example.com/komodo/komodod:0.9.0
            """)

    @Argument(help: "The image, as REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:….") var reference: String
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var reference: String
        var digest: String
        var mediaType: String
        var size: Int64
    }

    func run() async throws {
        let report = try await registryFlags.with(reference) { ref, client in
            let (_, descriptor) = try await client.manifest(ref.repository, ref.identifier)
            return Report(
                reference: ref.description, digest: descriptor.digest.description, mediaType: descriptor.mediaType,
                size: descriptor.size)
        }
        if output.json { return try Output.json(report) }
        Output.line(report.digest)
    }
}

struct ManifestCommand: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifest",
        abstract: "Print a remote image's manifest or index as served (like `crane manifest`).",
        discussion: """
            Without --json the exact bytes the registry serves are printed (their sha256 is the digest). \
            --json wraps them with the reference, digest and media type, and lists the image's referrers \
            (SBOMs) found by the referrers API or the sha256-<digest> tag.

              kiln manifest registry.example.com/komodo/komodod:0.9.0 | jq .layers
            """)

    @Argument(help: "The image, as REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:….") var reference: String
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var reference: String
        var digest: String
        var mediaType: String
        var manifest: JSONValue
        var referrers: [Descriptor]
    }

    func run() async throws {
        let json = output.json
        let report = try await registryFlags.with(reference) { ref, client -> Report? in
            let (data, descriptor) = try await client.manifest(ref.repository, ref.identifier)
            guard json else {
                FileHandle.standardOutput.write(data)
                return nil
            }
            return Report(
                reference: ref.description, digest: descriptor.digest.description, mediaType: descriptor.mediaType,
                manifest: try JSONDecoder().decode(JSONValue.self, from: data),
                referrers: try await Referrers.list(
                    descriptor.digest, in: RegistryRepository(client: client, repository: ref.repository)))
        }
        if let report { try Output.json(report) }
    }
}
