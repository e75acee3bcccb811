import Foundation
import KilnOCI

/// What a Kubernetes cluster needs to refuse images of a release that the release key did not sign: sigstore
/// policy-controller `ClusterImagePolicy` objects (policy.sigstore.dev/v1beta1) for every image under the release's
/// `REGISTRY/NAMESPACE` (the glob `REGISTRY/NAMESPACE/**`, which covers digest references), the key given
/// inline. Two policies, because policy-controller checks an authority's attestations *instead of* its
/// signatures, ORs the authorities of one policy and ANDs the policies that match an image: one requires the
/// key's signature (`.sig`), the other the SLSA provenance attestation signed by the key (`.att`), as
/// `kiln verify --key` does. No Rekor is configured, so policy-controller checks offline, as Kiln signs. CRI-O's
/// policy.json (`ContainersPolicy`) is the node-level alternative.
public enum ClusterImagePolicy {
    /// An object's name: `kiln-release-`, the scope as DNS label characters, and what it requires.
    public static func name(scope: String, requiring what: String) -> String {
        "kiln-release-\(DNSLabel.label(scope, max: 36))-\(what)"
    }

    /// The YAML file (two documents) for images under `scope` (`REGISTRY` or `REGISTRY/NAMESPACE`).
    /// Several keys (a rotation) are one authority each: any of them satisfies a policy.
    public static func yaml(scope: String, publicKeyPEMs: [String]) -> String {
        func policy(_ what: String, provenance: Bool) -> YAMLValue {
            let authorities = publicKeyPEMs.enumerated().map { n, pem -> YAMLValue in
                [
                    "name": .string(publicKeyPEMs.count == 1 ? "release-key" : "release-key-\(n + 1)"),
                    "key": ["data": .lines(pem)],
                    "attestations": provenance
                        ? [["name": "provenance", "predicateType": .string(SLSAProvenance<EmptyObject>.predicateType)]]
                        : nil,
                ]
            }
            return [
                "apiVersion": "policy.sigstore.dev/v1beta1", "kind": "ClusterImagePolicy",
                "metadata": ["name": .string(name(scope: scope, requiring: what))],
                "spec": ["mode": "enforce", "images": [["glob": "\(scope)/**"]], "authorities": .list(authorities)],
            ]
        }
        let comments = [
            "Written by kiln deploy-refs --key: sigstore policy-controller admits an image under \(scope) only",
            "when the release key signed it (first policy) and signed its SLSA provenance attestation (second).",
            "kubectl apply -f this file once policy-controller is installed; it checks Pods in namespaces",
            "labelled policy.sigstore.dev/include=true.",
        ]
        let documents = [policy("signature", provenance: false), policy("provenance", provenance: true)]
        return YAMLFile(comments: comments, documents: documents, markDocuments: true).text
    }
}
