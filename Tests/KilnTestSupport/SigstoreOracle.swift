import Foundation

/// Debian 13's skopeo (1.18, containers/image 5.34) as the independent judge of cosign-format signatures,
/// and trixie's cosign 2.5 for attestations.
/// Debian 12's skopeo and podman carry Debian's `disable-sigstore.patch` and refuse every sigstore signature,
/// so trixie's is fetched (not installed): `apt-get download skopeo libc6` against the host's own mirror, read
/// from the host's apt configuration, with a private apt state; both packages are unpacked into a cache
/// directory and `skopeo` runs through trixie's loader. Fetched once per machine (under a lock) into
/// `$KILN_ORACLE_CACHE`, else `$TMPDIR/kiln-oracles`. When it cannot be had, tests print why and skip, unless
/// `KILN_REQUIRE_ORACLES=1`, which makes a missing oracle a failure.
public enum SigstoreOracle {
    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String
    }

    /// True when a missing oracle must fail the test instead of skipping it.
    public static var required: Bool { ProcessInfo.processInfo.environment["KILN_REQUIRE_ORACLES"] == "1" }

    /// The `skopeo` wrapper, fetched on first use.
    public static func skopeo() throws -> String {
        let cache =
            ProcessInfo.processInfo.environment["KILN_ORACLE_CACHE"]
            ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("kiln-oracles")
        let directory = cache + "/trixie-skopeo"
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        let wrapper = directory + "/skopeo"
        if FileManager.default.isExecutableFile(atPath: wrapper),
            FileManager.default.isExecutableFile(atPath: directory + "/root/usr/bin/cosign"),
            (try? Shell.run([wrapper, "--version"]).stdout.contains("skopeo version")) == true
        {
            return wrapper
        }
        guard let mirror = hostMirror() else {
            throw Unavailable(description: "no Debian mirror in the host's apt configuration")
        }
        let script = """
            set -eu
            D="$1"; M="$2"
            [ -x "$D/skopeo" ] && [ -x "$D/root/usr/bin/cosign" ] && "$D/skopeo" --version >/dev/null 2>&1 && exit 0
            rm -rf "$D"; mkdir -p "$D"
            A="$D/apt"
            mkdir -p "$A/state/lists/partial" "$A/cache/archives/partial" "$A/etc" "$D/debs" "$D/root"
            echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $M trixie main" > "$A/etc/sources.list"
            set -- -o Dir::Etc::sourcelist="$A/etc/sources.list" -o Dir::Etc::sourceparts="$A/etc" \\
              -o Dir::State="$A/state" -o Dir::Cache="$A/cache" -o Dir::State::status=/var/lib/dpkg/status \\
              -o APT::Sandbox::User=root
            apt-get "$@" update -qq
            cd "$D/debs" && apt-get "$@" download skopeo libc6 cosign >/dev/null
            for d in skopeo_*.deb libc6_*.deb cosign_*.deb; do dpkg-deb -x "$d" "$D/root"; done
            R="$D/root"; L=/usr/lib/x86_64-linux-gnu
            printf '#!/bin/sh\\nexec %s%s/ld-linux-x86-64.so.2 --library-path %s%s:/lib/x86_64-linux-gnu:%s %s/usr/bin/skopeo "$@"\\n' \\
              "$R" "$L" "$R" "$L" "$L" "$R" > "$D/skopeo.new"
            chmod +x "$D/skopeo.new"
            "$D/skopeo.new" --version >/dev/null
            mv "$D/skopeo.new" "$D/skopeo"
            """
        let result = try Shell.run(
            ["flock", cache + "/trixie-skopeo.lock", "sh", "-c", script, "fetch", directory, mirror], check: false)
        guard FileManager.default.isExecutableFile(atPath: directory + "/root/usr/bin/cosign") else {
            throw Unavailable(description: "fetching trixie's cosign failed: \(result.stderr.suffix(600))")
        }
        guard result.succeeded, FileManager.default.isExecutableFile(atPath: wrapper) else {
            throw Unavailable(
                description: "fetching trixie's skopeo failed: \(result.stderr.suffix(600))")
        }
        return wrapper
    }

    /// trixie's cosign 2.5 (a Go binary that runs on the host's libc), fetched with skopeo: checks the `.att`
    /// attestations offline (`--insecure-ignore-tlog`).
    public static func cosign() throws -> String {
        let skopeo = try self.skopeo()
        return (skopeo as NSString).deletingLastPathComponent + "/root/usr/bin/cosign"
    }

    /// The first Debian archive URI of the host's apt sources (one-line `deb` lines or deb822 `URIs:`), not
    /// the security archive.
    static func hostMirror() -> String? {
        var candidates: [String] = []
        let listFiles =
            ["/etc/apt/sources.list"]
            + ((try? FileManager.default.contentsOfDirectory(atPath: "/etc/apt/sources.list.d")) ?? []).sorted()
            .map { "/etc/apt/sources.list.d/" + $0 }
        for file in listFiles {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                if file.hasSuffix(".list") || file.hasSuffix("sources.list"), words.first == "deb" {
                    candidates += words.dropFirst().filter { $0.hasPrefix("http://") || $0.hasPrefix("https://") }
                } else if file.hasSuffix(".sources"), words.first == "URIs:" {
                    candidates += words.dropFirst()
                }
            }
        }
        return candidates.first { !$0.contains("security") && !$0.contains("updates") }
            ?? candidates.first { !$0.contains("security") }
    }

    /// Runs `body` with the oracle, or prints why it is skipped (a failure under `KILN_REQUIRE_ORACLES=1`).
    /// Returns nil when skipped.
    public static func with<T>(_ body: (String) async throws -> T) async throws -> T? {
        let skopeo: String
        do { skopeo = try self.skopeo() } catch {
            if required { throw error }
            print("skipped: Debian 13's skopeo is not available (\(error)); KILN_REQUIRE_ORACLES=1 makes this fail")
            return nil
        }
        return try await body(skopeo)
    }
}

/// A containers policy and registries.d for one loopback registry, the way an operator would write them: every
/// image from `registry` must carry a sigstore signature by `publicKey`; everything else is refused.
public struct SigstorePolicy: Sendable {
    public let directory: TemporaryDirectory
    public let skopeo: String
    public var policy: String { directory.path + "/policy.json" }
    public var registriesD: String { directory.path + "/registries.d" }

    /// `signedIdentity` is the policy's JSON for it (default `matchRepository`; a promoted image needs
    /// `remapIdentity`, as its signature names the repository it was signed in).
    public init(
        skopeo: String, registry: String, publicKey: String,
        signedIdentity: String = #"{"type": "matchRepository"}"#
    ) throws {
        self.skopeo = skopeo
        directory = try TemporaryDirectory("kiln-policy")
        try directory.write(
            "policy.json",
            """
            {"default": [{"type": "reject"}],
             "transports": {"docker": {"\(registry)": [{"type": "sigstoreSigned", "keyPath": "\(publicKey)",
               "signedIdentity": \(signedIdentity)}]},
               "oci": {"": [{"type": "insecureAcceptAnything"}]},
               "dir": {"": [{"type": "insecureAcceptAnything"}]}}}
            """)
        try directory.write(
            "registries.d/kiln.yaml", "docker:\n  \(registry):\n    use-sigstore-attachments: true\n")
    }

    /// `skopeo copy` of `reference` (docker transport) into a scratch layout under the policy: exit 0 when the
    /// policy accepts the image.
    public func copy(_ reference: String, all: Bool = false) throws -> CommandResult {
        // The signatures are checked, then dropped: an OCI layout cannot hold them.
        var arguments = [
            skopeo, "--policy", policy, "--registries.d", registriesD, "copy", "--remove-signatures",
            "--src-tls-verify=false",
        ]
        if all { arguments.append("--all") }
        arguments += ["docker://\(reference)", "oci:\(directory.path)/out-\(UUID().uuidString.lowercased()):x"]
        return try Shell.run(arguments, check: false)
    }

    /// `skopeo copy --sign-by-sigstore-private-key KEY` from an OCI layout to the registry: skopeo signs.
    public func copyAndSign(from source: String, to reference: String, key: String, password: String) throws
        -> CommandResult
    {
        let passphrase = try directory.write("passphrase-\(UUID().uuidString)", password)
        return try Shell.run(
            [
                skopeo, "--policy", policy, "--registries.d", registriesD, "copy", "--dest-tls-verify=false",
                "--sign-by-sigstore-private-key", key, "--sign-passphrase-file", passphrase, source,
                "docker://\(reference)",
            ], check: false)
    }
}
