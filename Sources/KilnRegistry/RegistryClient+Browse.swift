import Foundation
import KilnHTTP
import KilnOCI

// The registry verbs people otherwise reach for crane or skopeo for: the catalog, a small blob read into memory
// (an image config), and deleting a manifest by tag or digest.
extension RegistryClient {
    /// Every repository the registry lists (`/v2/_catalog`, `Link` pagination followed), as it answers them.
    public func catalog(pageSize: Int = 1000) async throws -> [String] {
        struct Page: Decodable { var repositories: [String]? }
        var result: [String] = []
        var path = "_catalog?n=\(pageSize)"
        let step = "listing repositories"
        // Bounded: a registry that links back to itself forever is an error, not a hang.
        for _ in 0..<1000 {
            let response = try await send(
                HTTPRequest(.GET, try await url(path, repository: nil)), scopes: ["registry:catalog:*"], step: step,
                repository: nil)
            guard response.status == 200 else {
                var error = failure(response, step: step, repository: nil)
                if response.status == 404 || response.status == 405 || response.status == 403 {
                    error.hint = "this registry does not offer its catalog (many hosted registries do not)"
                }
                throw error
            }
            guard let page = try? JSONDecoder().decode(Page.self, from: response.body) else {
                throw RegistryError(
                    registry: registry, repository: nil, step: step, message: "the answer is not a repository list")
            }
            result += page.repositories ?? []
            guard let next = Self.nextPage(response.header("Link")) else { return result }
            path = next.hasPrefix("/v2/") ? String(next.dropFirst(4)) : next
        }
        throw RegistryError(registry: registry, repository: nil, step: step, message: "more than 1000 pages")
    }

    /// A small blob (a config), read into memory and checked against its digest.
    public func blob(_ repository: String, _ digest: Digest, limit: Int = 16 << 20) async throws -> Data {
        let step = "fetching blob \(digest)"
        let response = try await send(
            HTTPRequest(.GET, try await url("\(repository)/blobs/\(digest)", repository: repository)),
            scopes: [scope(repository, "pull")], step: step, repository: repository, limit: limit)
        guard response.status == 200 else { throw failure(response, step: step, repository: repository) }
        let actual = Digest.sha256(response.body)
        guard actual == digest else {
            throw RegistryError(
                registry: registry, repository: repository, step: step, message: "content hashes to \(actual)",
                hint: "the registry or a proxy altered the blob: refusing it")
        }
        return response.body
    }

    /// Deletes the manifest `reference` (a tag or a digest) names, through the registry's delete API: the manifest
    /// goes, and with it every tag on it. Returns its digest. A registry that forbids deleting is an error saying so.
    @discardableResult
    public func delete(_ repository: String, _ reference: String) async throws -> Digest {
        guard let descriptor = try await manifestDescriptor(repository, reference) else {
            throw RegistryError(
                registry: registry, repository: repository, step: "deleting \(reference)", status: 404,
                message: "no manifest \(reference)", hint: "no such tag or digest in this repository")
        }
        do {
            try await deleteManifest(repository, descriptor.digest)
        } catch var error as RegistryError where error.status == 405 || error.code == "UNSUPPORTED" {
            error.hint =
                "this registry does not allow deleting (docker-registry: storage.delete.enabled in its config); nothing was deleted"
            throw error
        }
        return descriptor.digest
    }
}
