import Foundation

/// Repository names per the distribution grammar, checked before any request: lower-case path components of
/// letters and digits joined by `.`, `_`, `__` or dashes, 255 characters at most. A registry may store an
/// upper-case name it is given, which no client can then pull.
public enum RepositoryName {
    static let component = #"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$"#

    public static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 255
            && name.split(separator: "/", omittingEmptySubsequences: false).allSatisfy {
                $0.range(of: component, options: .regularExpression) != nil
            }
    }

    /// Throws a message naming the bad name and the rule.
    public static func validate(_ name: String, registry: String) throws {
        guard !isValid(name) else { return }
        throw RegistryError(
            registry: registry, repository: name, step: "checking the repository name",
            message: "'\(name)' is not a valid repository name",
            hint:
                "repository names are lower-case letters and digits, separated by . _ __ - within a component and / "
                + "between components (at most 255 characters); rename the recipe or choose another namespace")
    }
}
