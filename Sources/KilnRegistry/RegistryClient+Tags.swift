import Foundation
import KilnHTTP
import KilnOCI

extension RegistryClient {
    /// Every tag of a repository, following the registry's `Link` pagination (`/v2/NAME/tags/list?n=…`).
    public func tags(_ repository: String, pageSize: Int = 1000) async throws -> [String] {
        struct Page: Decodable { var tags: [String]? }
        var result: [String] = []
        var path = "\(repository)/tags/list?n=\(pageSize)"
        // Bounded: a registry that links back to itself forever is an error, not a hang.
        for _ in 0..<1000 {
            let step = "listing tags"
            let response = try await send(
                HTTPRequest(.GET, try await url(path, repository: repository)), scopes: [scope(repository, "pull")],
                step: step, repository: repository)
            guard response.status == 200 else { throw failure(response, step: step, repository: repository) }
            guard let page = try? JSONDecoder().decode(Page.self, from: response.body) else {
                throw RegistryError(
                    registry: registry, repository: repository, step: step, message: "the answer is not a tag list")
            }
            result += page.tags ?? []
            guard let next = Self.nextPage(response.header("Link")) else { return result }
            path = next.hasPrefix("/v2/") ? String(next.dropFirst(4)) : next
        }
        throw RegistryError(
            registry: registry, repository: repository, step: "listing tags", message: "more than 1000 pages")
    }

    /// The target of `Link: </v2/…>; rel="next"`.
    static func nextPage(_ header: String?) -> String? {
        guard let header, header.contains("rel=\"next\""), let open = header.firstIndex(of: "<"),
            let close = header.firstIndex(of: ">"), open < close
        else { return nil }
        return String(header[header.index(after: open)..<close])
    }

    /// The referrers index of a manifest (`/v2/NAME/referrers/DIGEST`, OCI distribution 1.1), or nil when the
    /// registry does not offer the API (404 or any non-index answer: docker-registry 2.8 has none).
    public func referrers(_ repository: String, _ digest: Digest) async throws -> ImageIndex? {
        // A registry with the API answers an empty index when there are none, so a 404 without a registry error
        // (no NAME_UNKNOWN: the route itself is unknown) means it has no such API, for every repository: a
        // fleet push asks once, not once per image.
        guard !session.withLock(\.lacksReferrersAPI) else { return nil }
        let step = "listing referrers of \(digest)"
        let response = try await send(
            HTTPRequest(
                .GET, try await url("\(repository)/referrers/\(digest)", repository: repository),
                headers: [("Accept", MediaType.imageIndex)]),
            scopes: [scope(repository, "pull")], step: step, repository: repository)
        if response.status == 404, RegistryErrorBody.decode(response.body)?.code == nil {
            session.withLock { $0.lacksReferrersAPI = true }
        }
        guard response.status == 200,
            response.header("Content-Type")?.hasPrefix(MediaType.imageIndex) == true
        else { return nil }
        return try? JSONDecoder().decode(ImageIndex.self, from: response.body)
    }
}
