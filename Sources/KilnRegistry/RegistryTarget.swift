import Foundation

/// `REGISTRY[/NAMESPACE]` as given to `--to` and `--from`: where a push, release or promotion puts each image
/// (`REGISTRY/NAMESPACE/NAME`).
public struct RegistryTarget: Sendable, Equatable {
    public var registry: String
    public var namespace: String

    public init(registry: String, namespace: String) {
        self.registry = registry
        self.namespace = namespace
    }

    /// A `--to` value that is not `REGISTRY[/NAMESPACE]`.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Checked before any request: the registry's address and the namespace's grammar (lower case).
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let first = parts.first, !first.isEmpty else {
            throw ParseError(description: "'\(text)' is not REGISTRY[/NAMESPACE], e.g. registry.example.com/komodo")
        }
        registry = first
        namespace = parts.count > 1 ? parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "/")) : ""
        do {
            try Reference.validateRegistry(registry)
        } catch {
            throw ParseError(description: "--to '\(text)': \(error)")
        }
        guard namespace.isEmpty || RepositoryName.isValid(namespace) else {
            throw ParseError(
                description:
                    "'\(text)': namespace '\(namespace)' must be lower-case path components of letters, digits and . _ -"
            )
        }
    }

    /// The repository of image `name` under the namespace.
    public func repository(_ name: String) -> String { namespace.isEmpty ? name : "\(namespace)/\(name)" }
}
