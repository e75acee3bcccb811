import ArgumentParser
import Foundation
import KilnOCI
import KilnRegistry
import KilnSign

/// The password of a private key: `KILN_KEY_PASSWORD`, else cosign's `COSIGN_PASSWORD`, else stdin (a prompt
/// without echo on a terminal, the first line otherwise). Never printed.
enum KeyPassword {
    static func read(for path: String, confirm: Bool = false) throws -> [UInt8] {
        let environment = ProcessInfo.processInfo.environment
        if let password = environment["KILN_KEY_PASSWORD"] ?? environment["COSIGN_PASSWORD"] {
            return Array(password.utf8)
        }
        guard isatty(STDIN_FILENO) != 0 else {
            guard let line = Swift.readLine(strippingNewline: true) else {
                throw SignError.noPassword(
                    "set KILN_KEY_PASSWORD (or COSIGN_PASSWORD), or write the password of \(path) on stdin")
            }
            return Array(line.utf8)
        }
        let password = try prompt("Password for \(path): ")
        if confirm, try prompt("Again: ") != password { throw ValidationError("the two passwords differ") }
        return password
    }

    /// Reads a line from the terminal with echo off.
    private static func prompt(_ text: String) throws -> [UInt8] {
        FileHandle.standardError.write(Data(text.utf8))
        var saved = termios()
        tcgetattr(STDIN_FILENO, &saved)
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet)
        defer {
            tcsetattr(STDIN_FILENO, TCSANOW, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        guard let line = Swift.readLine(strippingNewline: true) else {
            throw SignError.noPassword("nothing was typed")
        }
        return Array(line.utf8)
    }

    /// The private key at `path`, opened with the password.
    static func privateKey(_ path: String) throws -> PrivateKey {
        try EncryptedKey.load(path: path, password: try read(for: path))
    }
}

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Manage signing keys (cosign's key format).",
        subcommands: [KeyGenerate.self])
}

struct KeyGenerate: ParsableCommand, LoggedCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a new ECDSA P-256 key pair: PREFIX.key (encrypted) and PREFIX.pub.",
        discussion: """
            PREFIX.key is in cosign's encrypted format (PEM 'ENCRYPTED SIGSTORE PRIVATE KEY': scrypt and NaCl \
            secretbox over the PKCS #8 key), so cosign and skopeo's --sign-by-sigstore-private-key use it, and \
            Kiln reads keys they made. PREFIX.pub is the PKIX public key (PEM) that `kiln verify --key`, cosign \
            and a containers policy.json (sigstoreSigned, keyPath) check signatures with. The password comes from \
            KILN_KEY_PASSWORD (or cosign's COSIGN_PASSWORD), else stdin; it is never printed. Nothing leaves this \
            machine: no Fulcio, no Rekor.

              KILN_KEY_PASSWORD=… kiln key generate release
            """)

    @Argument(help: "Write PREFIX.key and PREFIX.pub.") var prefix: String
    @Flag(name: .long, help: "Replace existing PREFIX.key and PREFIX.pub.") var force = false
    @OptionGroup var output: OutputOptions
    @OptionGroup var log: LogOptions

    func run() throws {
        let password = try KeyPassword.read(for: prefix + ".key", confirm: true)
        let written = try KeyFiles.generate(prefix: prefix, password: password, replace: force)
        if output.json { return try Output.json(written) }
        Output.line("\(written.privateKey)  (private, encrypted)")
        Output.line("\(written.publicKey)  (public, key id \(written.keyID.encoded.prefix(12)))")
    }
}

struct Sign: AsyncParsableCommand, NetworkedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign images in a registry with a key, as cosign does.",
        discussion: """
            Each REF (REGISTRY/NAME:TAG or …@sha256:…) is resolved to its digest and signed: a simple-signing \
            payload (the image's digest and reference) signed with ECDSA P-256 SHA-256, attached under the tag \
            sha256-<hex>.sig, where cosign, skopeo and podman look. A multi-platform image is signed as a whole \
            and per platform. Signing again with the same key adds nothing. The key's password: \
            KILN_KEY_PASSWORD or COSIGN_PASSWORD, else stdin.

              kiln sign registry.example.com/komodo/komodod:0.9.2 --key release.key
            """)

    @Argument(help: "The images to sign.") var references: [String]
    @Option(name: .long, help: "The private key (cosign's encrypted format).") var key: String
    @OptionGroup var registryFlags: RegistryFlags
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var signatures: [ImageSigner.Signed]
    }

    func run() async throws {
        let refs = try references.map { text -> Reference in
            do { return try Reference(parsing: text) } catch { throw ValidationError("\(error)") }
        }
        guard !refs.isEmpty else { throw ValidationError("name at least one image to sign") }
        let privateKey = try KeyPassword.privateKey(key)
        var signatures: [ImageSigner.Signed] = []
        for ref in refs {
            signatures += try await withRegistry(ref.registry, registryFlags) { client in
                try await ImageSigner(client: client, key: privateKey).sign(ref)
            }
        }
        if output.json { return try Output.json(Report(signatures: signatures)) }
        for signed in signatures {
            Output.line(
                "\(signed.reference)\(signed.platform.map { " (\($0))" } ?? "")  "
                    + (signed.added ? "signed" : "already signed") + " → \(signed.signatureTag)")
        }
    }
}
