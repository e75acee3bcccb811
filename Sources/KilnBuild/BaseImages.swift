import Foundation
import KilnHTTP
import KilnOCI
import KilnRecipe
import KilnRegistry
import KilnStore

/// Registry base images (`base: REGISTRY/NAME:TAG@sha256:…`): fetched once into the store before a build,
/// verified against the pinned digest; later builds find them there and never touch the network.
public enum BaseImages {
    /// Pulls every pinned registry base the plan names that the store lacks, through `transport` (nil:
    /// offline, where a missing base is an error). Returns what was pulled.
    @discardableResult
    static func fetchMissing(
        _ bases: [RegistryBase], into layout: OCILayout, options: RegistryOptions, transport: HTTPTransport?,
        events: @escaping @Sendable (TransferEvent) -> Void = { _ in }
    ) async throws -> [String] {
        var pulled: [String] = []
        for base in bases {
            let (text, digest, location) = (base.reference, base.digest, base.location)
            let reference: Reference
            do {
                reference = try Reference(parsing: "\(text)@\(digest)")
            } catch {
                throw BuildError.recipe(location, "\(error)")
            }
            let tag = "\(reference.registry)/\(reference.repository):sha256-\(digest.encoded)"
            guard try layout.pinnedImage(digest) == nil else {
                // A docker base stored as served by an older Kiln is stored again as OCI.
                try layout.convertPinnedBase(digest, tag: tag)
                continue
            }
            guard let transport else {
                throw BuildError.recipe(
                    location,
                    "base image \(reference) is not in the store and --offline forbids fetching it: "
                        + "run `kiln pull \(reference)` on a machine with network, or build without --offline")
            }
            let client = RegistryClient(registry: reference.registry, transport: transport, options: options)
            do {
                // All platforms of an index, so the layout holds exactly the pinned document.
                let descriptor = try await Puller(layout: layout, client: client, events: events)
                    .pull(reference, platforms: nil)
                // Tagged so `kiln gc` keeps it.
                try layout.tag(descriptor, as: tag)
            } catch {
                throw BuildError.recipe(location, "cannot fetch base \(reference): \(error)")
            }
            pulled.append(reference.description)
        }
        return pulled
    }
}
