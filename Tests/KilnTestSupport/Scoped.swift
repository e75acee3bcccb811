import Foundation

// Scoped fixtures for real servers and scratch space: each starts what the test needs, hands it to the body and
// stops or removes it however the body ends (as HummingbirdTesting's `app.test { client in … }` does), so a
// failing expectation or a thrown error never leaks a registry process or a temporary tree.

/// A real `docker-registry` for the duration of `body`.
public func withRegistry<T>(
    auth: RegistryServer.Auth = .none, tls: Bool = false, _ body: (RegistryServer) async throws -> T
) async throws -> T {
    let registry = try RegistryServer(auth: auth, tls: tls)
    defer { registry.stop() }
    return try await body(registry)
}

/// A temporary directory, removed afterwards.
public func withTemporaryDirectory<T>(_ label: String = "kiln", _ body: (TemporaryDirectory) async throws -> T)
    async throws -> T
{
    let directory = try TemporaryDirectory(label)
    defer { directory.remove() }
    return try await body(directory)
}

/// A static file server over `root` (every request logged), for the duration of `body`.
public func withFileServer<T>(root: String, _ body: (StaticFileServer) async throws -> T) async throws -> T {
    let log = FileManager.default.temporaryDirectory.path + "/kiln-file-server-\(UUID().uuidString).log"
    let server = try StaticFileServer(root: root, log: log)
    defer {
        server.stop()
        try? FileManager.default.removeItem(atPath: log)
    }
    return try await body(server)
}

/// A real `docker-registry` and a temporary directory beside it (a project, a store, keys): the shape most
/// registry tests take.
public func withRegistry<T>(
    auth: RegistryServer.Auth = .none, tls: Bool = false, directory label: String,
    _ body: (RegistryServer, TemporaryDirectory) async throws -> T
) async throws -> T {
    try await withRegistry(auth: auth, tls: tls) { registry in
        try await withTemporaryDirectory(label) { directory in try await body(registry, directory) }
    }
}

/// podman with its own storage and configuration, its containers and images removed afterwards.
public func withPodman<T>(_ body: (Podman) async throws -> T) async throws -> T {
    let podman = try Podman()
    defer { podman.cleanUp() }
    return try await body(podman)
}

/// A signed Debian repository built from `packages` (the body serves it when it wants), stopped afterwards.
public func withDebianRepository<T>(
    packages: [DebianRepository.Package], _ body: (DebianRepository) async throws -> T
) async throws -> T {
    let repository = try DebianRepository(packages: packages)
    defer { repository.stop() }
    return try await body(repository)
}
