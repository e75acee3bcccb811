import Foundation

// Scoped fixtures for the shapes registry tests repeat (see Scoped.swift for the single ones): a registry with
// scratch space beside it, a registry guarded by a token server, a proxy in front of one. Each stops or removes
// what it started however the body ends.

/// A real `docker-registry` (Basic auth, TLS or no delete API as asked) and a temporary directory beside it, for
/// the duration of `body`: the shape of most push and pull tests.
public func withRegistry<T>(
    auth: RegistryServer.Auth = .none, tls: Bool = false, deletes: Bool = true, scratch label: String,
    _ body: (RegistryServer, TemporaryDirectory) async throws -> T
) async throws -> T {
    let registry = try RegistryServer(auth: auth, tls: tls, deletes: deletes)
    defer { registry.stop() }
    return try await withTemporaryDirectory(label) { try await body(registry, $0) }
}

/// A registry that asks for bearer tokens, the token server that grants them to `user`/`password`, and a
/// temporary directory, for the duration of `body`.
public func withTokenRegistry<T>(
    user: String, password: String, scratch label: String,
    _ body: (TokenServer, RegistryServer, TemporaryDirectory) async throws -> T
) async throws -> T {
    let tokens = try TokenServer(user: user, password: password)
    defer { tokens.stop() }
    return try await withRegistry(auth: .token(tokens), scratch: label) { try await body(tokens, $0, $1) }
}

/// A proxy injecting faults (resets, 429s, 500s) in front of 127.0.0.1:`upstream`, for the duration of `body`.
public func withFaultProxy<T>(
    upstream: Int, delay: Double = 0.02, rates: FaultProxy.Rates? = nil, _ body: (FaultProxy) async throws -> T
) async throws -> T {
    let proxy = try FaultProxy(upstream: upstream, delay: delay, rates: rates)
    defer { proxy.stop() }
    return try await body(proxy)
}

/// A forward proxy (tinyproxy) that lets CONNECT through to `connectPorts`, for the duration of `body`.
public func withProxy<T>(
    user: String? = nil, password: String? = nil, connectPorts: [Int] = [], _ body: (ProxyServer) async throws -> T
) async throws -> T {
    let proxy = try ProxyServer(user: user, password: password, connectPorts: connectPorts)
    defer { proxy.stop() }
    return try await body(proxy)
}

/// A `HostileServer` answering what `rules` match and forwarding the rest to 127.0.0.1:`upstream` (when given),
/// for the duration of `body`.
public func withHostileServer<T>(
    rules: [HostileServer.Rule] = [], upstream: Int? = nil, _ body: (HostileServer) async throws -> T
) async throws -> T {
    let hostile = try HostileServer(rules: rules, upstream: upstream)
    defer { hostile.stop() }
    return try await body(hostile)
}

/// A real registry behind a `HostileServer` (rules first, the registry for the rest) and a temporary directory,
/// for the duration of `body`: the shape of the tests that make a registry misbehave on purpose.
public func withHostileRegistry<T>(
    rules: [HostileServer.Rule] = [], scratch label: String,
    _ body: (RegistryServer, HostileServer, TemporaryDirectory) async throws -> T
) async throws -> T {
    try await withRegistry(scratch: label) { registry, scratch in
        try await withHostileServer(rules: rules, upstream: registry.port) { try await body(registry, $0, scratch) }
    }
}
