import Foundation
import KilnOCI

/// What a Kubernetes cluster needs to refuse images of a release that the release key did not sign: a sigstore
/// policy-controller `ClusterImagePolicy` (policy.sigstore.dev/v1beta1) for every image under the release's
/// `REGISTRY/NAMESPACE` (the glob `REGISTRY/NAMESPACE/**`, which covers digest references), with one authority:
/// the key, given inline, and the SLSA provenance attestation it must also have signed (as `kiln verify --key`
/// requires). No Rekor is configured, so policy-controller checks offline, as Kiln signs. CRI-O's own
/// policy.json (`ContainersPolicy`) is the node-level alternative.
public enum ClusterImagePolicy {
    /// The object's name: `kiln-release-` and the scope as a DNS label.
    public static func name(scope: String) -> String {
        var slug = ""
        for character in scope.lowercased() {
            let allowed = character.isASCII && (character.isLetter || character.isNumber)
            if allowed {
                slug.append(character)
            } else if !slug.hasSuffix("-") {
                slug.append("-")
            }
        }
        let trimmed = String(slug.trimmingCharacters(in: CharacterSet(charactersIn: "-")).prefix(50))
        return "kiln-release-" + (trimmed.hasSuffix("-") ? String(trimmed.dropLast()) : trimmed)
    }

    /// The YAML document for images under `scope` (`REGISTRY` or `REGISTRY/NAMESPACE`).
    public static func yaml(scope: String, publicKeyPEM: String) -> String {
        let pem = publicKeyPEM.split(separator: "\n", omittingEmptySubsequences: true)
            .map { "          " + $0 }.joined(separator: "\n")
        return """
            # Written by kiln deploy-refs --key: sigstore policy-controller admits an image under \(scope) only when
            # the release key signed it and signed its SLSA provenance attestation. kubectl apply -f this file once
            # policy-controller is installed; it checks Pods in namespaces labelled policy.sigstore.dev/include=true.
            apiVersion: policy.sigstore.dev/v1beta1
            kind: ClusterImagePolicy
            metadata:
              name: \(name(scope: scope))
            spec:
              mode: enforce
              images:
                - glob: "\(scope)/**"
              authorities:
                - name: release-key
                  key:
                    data: |
            \(pem)
                  attestations:
                    - name: provenance
                      predicateType: "\(SLSAProvenance<EmptyObject>.predicateType)"

            """
    }
}
