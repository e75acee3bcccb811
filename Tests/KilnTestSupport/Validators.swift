import Foundation

/// Validators no one here wrote, from PyPI: `kubernetes-validate` (Kubernetes' own schemas),
/// `check-jsonschema` (with the compose-spec schema), `pyspdxtools` (SPDX's own tools) and `podman-compose` to
/// bring a compose file up. They live in a venv created once per machine (`$KILN_VALIDATORS_VENV`, default
/// under the temporary directory), under a lock so parallel tests share it.
public enum Validators {
    public static let packages = [
        "kubernetes-validate==1.37.0", "check-jsonschema==0.39.0", "podman-compose==1.6.0", "spdx-tools==0.8.5",
    ]

    /// The venv's bin directory, created on first use.
    public static func bin() throws -> String {
        let venv =
            ProcessInfo.processInfo.environment["KILN_VALIDATORS_VENV"]
            ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("kiln-validators-venv")
        let ready = ["kubernetes-validate", "check-jsonschema", "podman-compose", "pyspdxtools"].map {
            "test -x '\(venv)/bin/\($0)'"
        }
        .joined(separator: " && ")
        let create =
            "rm -rf '\(venv)' && python3 -m venv '\(venv)' && '\(venv)/bin/pip' install --quiet "
            + packages.joined(separator: " ")
        try Shell.run(["flock", venv + ".lock", "sh", "-c", "\(ready) || (\(create))"])
        return venv + "/bin"
    }

    /// `kubernetes-validate --strict FILE`: every document against the Kubernetes schemas, unknown fields refused.
    @discardableResult public static func kubernetes(_ file: String) throws -> CommandResult {
        try Shell.run([try bin() + "/kubernetes-validate", "--strict", file], check: false)
    }

    /// `check-jsonschema --builtin-schema vendor.compose-spec FILE`.
    @discardableResult public static func compose(_ file: String) throws -> CommandResult {
        try Shell.run([try bin() + "/check-jsonschema", "--builtin-schema", "vendor.compose-spec", file], check: false)
    }

    /// `pyspdxtools -i FILE`: parses the SPDX document and validates it against the SPDX 2.3 specification.
    @discardableResult public static func spdx(_ file: String) throws -> CommandResult {
        try Shell.run([try bin() + "/pyspdxtools", "-i", file], check: false)
    }
}
