import ArgumentParser
import Foundation
import KilnHTTP
import KilnOCI
import KilnRegistry
import KilnRelease
import KilnStore

struct Login: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Save credentials for a registry.",
        discussion: """
            Checks the credential against the registry first (Basic or bearer token, per its challenge) and saves \
            nothing when it is refused. Stores it in $REGISTRY_AUTH_FILE when that is set (podman's auth.json), \
            else in docker's config.json ($DOCKER_CONFIG, else ~/.docker), through its credsStore helper when one \
            is configured, else base64 in `auths` with file mode 0600. The password is read from --password-stdin \
            (recommended) so it never appears in the process list or shell history.
            """)

    @Argument(help: "Registry host[:port].") var registry: String
    @Option(name: [.short, .long], help: "User name.") var username: String
    @Flag(name: .customLong("password-stdin"), help: "Read the password from standard input.") var passwordStdin = false
    @Option(name: [.short, .long], help: "Password (prefer --password-stdin).") var password: String?
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var registry: String
        var username: String
        var saved: Bool
    }

    func run() async throws {
        var secret = password
        if passwordStdin {
            secret = readLine(strippingNewline: true)
        }
        guard let secret, !secret.isEmpty else {
            throw ValidationError("give the password with --password-stdin (or --password)")
        }
        let credential = Credential(username: username, secret: secret)
        let (client, transport) = try registryFlags.client(for: registry)
        do {
            try await client.verify(credential)
        } catch {
            await transport.shutdown()
            throw error
        }
        await transport.shutdown()
        try CredentialStore().save(credential, for: registry)
        if output.json { return try Output.json(Report(registry: registry, username: username, saved: true)) }
        Output.line("saved credentials for \(username) at \(registry)")
    }
}

struct Logout: ParsableCommand, LoggedCommand {
    static let configuration = CommandConfiguration(abstract: "Remove saved credentials for a registry.")

    @Argument(help: "Registry host[:port].") var registry: String
    @OptionGroup var output: OutputOptions
    @OptionGroup var log: LogOptions

    struct Report: Encodable {
        var registry: String
        var removed: Bool
    }

    func run() throws {
        let removed = try CredentialStore().remove(for: registry)
        if output.json { return try Output.json(Report(registry: registry, removed: removed)) }
        Output.line(removed ? "removed credentials for \(registry)" : "no saved credentials for \(registry)")
    }
}
