import Testing

@testable import KilnRegistry

/// `REGISTRY[/NAMESPACE]`: parsed and checked before any request.
struct RegistryTargetTests {
    @Test func registryTargetsAndRepositories() throws {
        let target = try RegistryTarget(parsing: "registry.example.com:5000/komodo/notary/")
        #expect(target.registry == "registry.example.com:5000" && target.namespace == "komodo/notary")
        #expect(target.repository("komodod") == "komodo/notary/komodod")
        #expect(try RegistryTarget(parsing: "localhost:5000").repository("x") == "x")
        #expect(throws: RegistryTarget.ParseError.self) { try RegistryTarget(parsing: "a b/ns") }
        let upper = #expect(throws: RegistryTarget.ParseError.self) {
            try RegistryTarget(parsing: "127.0.0.1:5000/Team")
        }
        #expect(upper?.description.contains("namespace 'Team' must be lower-case") == true)
    }
}
