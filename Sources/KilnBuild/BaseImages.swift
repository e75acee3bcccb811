import Foundation
import KilnHTTP
import KilnOCI
import KilnRecipe
import KilnRegistry
import KilnStore

/// Registry base images (`base: REGISTRY/NAME:TAG@sha256:…`): fetched once into the store before a build,
/// verified against the pinned digest; later builds find them there and never touch the network.
public enum BaseImages {
    /// Pulls every pinned registry base the recipes name that the store lacks. Returns what was pulled.
    public static func fetchMissing(
        _ recipes: [Recipe], into layout: OCILayout, options: RegistryOptions, httpOptions: HTTPOptions = HTTPOptions(),
        events: @escaping @Sendable (TransferEvent) -> Void = { _ in }
    ) async throws -> [String] {
        var pulled: [String] = []
        var seen = Set<Digest>()
        for recipe in recipes {
            guard case .image(let text, let digest) = recipe.base, seen.insert(digest).inserted else { continue }
            let reference: Reference
            do {
                reference = try Reference(parsing: "\(text)@\(digest)")
            } catch {
                throw BuildError.recipe("\(recipe.baseLocation ?? recipe.location): error: \(error)")
            }
            let tag = "\(reference.registry)/\(reference.repository):sha256-\(digest.encoded)"
            guard try layout.pinnedImage(digest) == nil else {
                // A docker base stored as served by an older Kiln is stored again as OCI.
                try layout.convertPinnedBase(digest, tag: tag)
                continue
            }
            let transport = try HTTPTransport(options: httpOptions)
            let client = RegistryClient(registry: reference.registry, transport: transport, options: options)
            do {
                // All platforms of an index, so the layout holds exactly the pinned document.
                let descriptor = try await Puller(layout: layout, client: client, events: events)
                    .pull(reference, platforms: nil)
                // Tagged so `kiln gc` keeps it.
                try layout.tag(descriptor, as: tag)
            } catch {
                await transport.shutdown()
                throw BuildError.recipe(
                    "\(recipe.baseLocation ?? recipe.location): error: cannot fetch base \(reference): \(error)")
            }
            await transport.shutdown()
            pulled.append(reference.description)
        }
        return pulled
    }
}
