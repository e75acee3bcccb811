import Foundation

/// What a node needs for podman (and CRI-O, OpenShift's runtime) to refuse images of a release that the
/// release key did not sign: a containers-policy.json(5) whose scope for the release's registry and namespace
/// requires a `sigstoreSigned` signature by the key (given inline as `keyData`; `keyDatas` while keys rotate), and a containers-registries.d(5)
/// entry that makes them look up cosign's `sha256-<hex>.sig` attachments there. Other images keep podman's
/// default (accepted as before). The signed identity must be the image's repository (`matchRepository`), so
/// moving tags and digest references both pass.
public enum ContainersPolicy {
    /// `policy.json` for images under `scope` (`REGISTRY` or `REGISTRY/NAMESPACE`), pretty and sorted. Several keys
    /// (a rotation) go in one requirement as `keyDatas`, which any of them satisfies (containers/image 5.34 and
    /// later, Debian 13's skopeo 1.18): two requirements in the scope's list would each have to pass.
    public static func policy(scope: String, publicKeyPEMs: [String]) throws -> Data {
        let keys = publicKeyPEMs.map { Data($0.utf8).base64EncodedString() }
        var requirement: [String: Any] = ["type": "sigstoreSigned", "signedIdentity": ["type": "matchRepository"]]
        if keys.count == 1 { requirement["keyData"] = keys[0] } else { requirement["keyDatas"] = keys }
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
        YAMLFile(
            comments: [
                "Written by kiln deploy-refs --key: look up cosign signatures (sha256-<hex>.sig) for the release."
            ],
            documents: [["docker": .map([(scope, ["use-sigstore-attachments": true] as YAMLValue)])]]
        ).text
    }
}
