import Foundation

/// What a node needs for podman (and CRI-O, OpenShift's runtime) to refuse images of a release that the
/// release key did not sign: a containers-policy.json(5) whose scope for the release's registry and namespace
/// requires a `sigstoreSigned` signature by the key (given inline as `keyData`), and a containers-registries.d(5)
/// entry that makes them look up cosign's `sha256-<hex>.sig` attachments there. Other images keep podman's
/// default (accepted as before). The signed identity must be the image's repository (`matchRepository`), so
/// moving tags and digest references both pass.
public enum ContainersPolicy {
    /// `policy.json` for images under `scope` (`REGISTRY` or `REGISTRY/NAMESPACE`), pretty and sorted.
    public static func policy(scope: String, publicKeyPEM: String) throws -> Data {
        let requirement: [String: Any] = [
            "type": "sigstoreSigned",
            "keyData": Data(publicKeyPEM.utf8).base64EncodedString(),
            "signedIdentity": ["type": "matchRepository"],
        ]
        let document: [String: Any] = [
            "default": [["type": "insecureAcceptAnything"]],
            "transports": ["docker": [scope: [requirement]]],
        ]
        return try JSONSerialization.data(
            withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            + Data("\n".utf8)
    }

    /// The registries.d file: `use-sigstore-attachments: true` for `scope`.
    public static func registriesD(scope: String) -> String {
        "# Written by kiln deploy-refs --key: look up cosign signatures (sha256-<hex>.sig) for the release.\n"
            + "docker:\n  \(scope):\n    use-sigstore-attachments: true\n"
    }
}
