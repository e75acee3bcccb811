import Foundation
import KilnHTTP
import KilnOCI

extension RegistryClient {
    static let manifestAccept = [
        MediaType.imageIndex, MediaType.imageManifest, MediaType.dockerManifestList, MediaType.dockerManifest,
    ].joined(separator: ", ")

    /// A manifest or index as the registry stores it: exact bytes, media type, and their digest (checked against
    /// the requested digest, or the registry's Docker-Content-Digest).
    public func manifest(_ repository: String, _ reference: String) async throws -> (data: Data, descriptor: Descriptor)
    {
        let step = "fetching manifest \(reference)"
        let response = try await send(
            HTTPRequest(
                .GET, try await url("\(repository)/manifests/\(reference)", repository: repository),
                headers: [("Accept", Self.manifestAccept)]),
            scopes: [scope(repository, "pull")], step: step, repository: repository, limit: 4 << 20)
        guard response.status == 200 else { throw failure(response, step: step, repository: repository) }
        let digest = Digest.sha256(response.body)
        let expected =
            (try? Digest(parsing: reference))
            ?? response.header("Docker-Content-Digest").flatMap { try? Digest(parsing: $0) }
        if let expected, expected != digest {
            throw RegistryError(
                registry: registry, repository: repository, step: step,
                message: "content hashes to \(digest), not \(expected)",
                hint: "the registry or a proxy altered the manifest: refusing it")
        }
        let type = response.header("Content-Type")?.split(separator: ";").first.map {
            String($0).trimmingCharacters(in: .whitespaces)
        }
        let mediaType =
            (type.flatMap { MediaType.indexTypes.union(MediaType.manifestTypes).contains($0) ? $0 : nil })
            ?? (try? JSONDecoder().decode(MediaTypeProbe.self, from: response.body).mediaType)
            ?? MediaType.imageManifest
        return (response.body, Descriptor(mediaType: mediaType, digest: digest, size: Int64(response.body.count)))
    }

    struct MediaTypeProbe: Decodable { var mediaType: String? }

    /// The descriptor the registry has under `reference`, or nil.
    public func manifestDescriptor(_ repository: String, _ reference: String) async throws -> Descriptor? {
        let step = "checking manifest \(reference)"
        let response = try await send(
            HTTPRequest(
                .HEAD, try await url("\(repository)/manifests/\(reference)", repository: repository),
                headers: [("Accept", Self.manifestAccept)]
            ),
            scopes: [scope(repository, "pull")], step: step, repository: repository)
        switch response.status {
        case 200:
            guard let digest = response.header("Docker-Content-Digest").flatMap({ try? Digest(parsing: $0) }) else {
                return try await manifest(repository, reference).descriptor
            }
            let type =
                response.header("Content-Type")?.split(separator: ";").first.map(String.init) ?? MediaType.imageManifest
            return Descriptor(
                mediaType: type, digest: digest, size: response.header("Content-Length").flatMap { Int64($0) } ?? 0)
        case 404: return nil
        default: throw failure(response, step: step, repository: repository)
        }
    }

    /// PUTs manifest bytes under a digest or tag and checks the digest the registry computed.
    public func putManifest(_ repository: String, _ reference: String, data: Data, mediaType: String) async throws {
        let step = "pushing manifest \(reference)"
        let response = try await send(
            HTTPRequest(
                .PUT, try await url("\(repository)/manifests/\(reference)", repository: repository),
                headers: [("Content-Type", mediaType)],
                body: .bytes(data), retryable: true),
            scopes: [scope(repository, "pull,push")], step: step, repository: repository)
        guard response.status == 201 else { throw failure(response, step: step, repository: repository) }
        let digest = Digest.sha256(data)
        if let answered = response.header("Docker-Content-Digest"), answered != digest.description {
            throw RegistryError(
                registry: registry, repository: repository, step: step,
                message: "the registry computed \(answered), not \(digest)")
        }
    }

    /// Deletes a manifest by digest (tests and rollback checks).
    public func deleteManifest(_ repository: String, _ digest: Digest) async throws {
        let step = "deleting manifest \(digest)"
        let response = try await send(
            HTTPRequest(.DELETE, try await url("\(repository)/manifests/\(digest)", repository: repository)),
            scopes: [scope(repository, "*")],
            step: step, repository: repository)
        guard response.status == 202 || response.status == 200 else {
            throw failure(response, step: step, repository: repository)
        }
    }
}
