import Foundation

/// Keeps secrets out of everything Kiln prints: error messages, `--json` errors and retry log lines. The one
/// function every message goes through (`HTTPError`, `RegistryError` and the retry log apply it to their
/// whole text), so a URL or an echoed header reaches no message unredacted, wherever it came from:
/// - `Authorization`-style values (`Basic …`, `Bearer …`) a server echoes back;
/// - known secrets (a password, the Basic header made from it);
/// - in every URL, the password of `user:password@` and the value of every query parameter except the few
///   that name content (`digest`, `mount`, `from`, `n`, `last`, `service`, `scope`): an upload session's
///   `_state`, a signed storage URL's `X-Amz-Signature` or `sig`, a realm's `token`.
public enum Redaction {
    /// Query parameters whose values are shown: they name content or a repository, never a capability.
    public static let shownQueryParameters: Set<String> = [
        "digest", "mount", "from", "n", "last", "service", "scope", "artifacttype",
    ]

    public static func redact(_ text: String, secrets: [String] = []) -> String {
        // A regex literal is parsed again on every call (and `Regex` cannot be shared between threads), while
        // every line Kiln prints comes here: text that cannot match skips the regex. A fleet push prints hundreds
        // of lines; parsing was a third of its client CPU beyond the largest image's push. Text that is not all
        // ASCII always goes through, so case folding never lets a credential past the check.
        var result = text
        let lower = text.lowercased()
        if lower.contains("basic") || lower.contains("bearer") || !text.utf8.allSatisfy({ $0 < 0x80 }) {
            // A credential, not a word of a sentence ("a bearer token"): not only lower-case letters.
            result = result.replacing(#/(?i)\b(basic|bearer)(\s+)([A-Za-z0-9+\/=._~-]{4,})/#) { match in
                let value = match.output.3
                return value.allSatisfy({ $0.isLowercase && $0.isLetter })
                    ? String(match.output.0) : "\(match.output.1)\(match.output.2)<redacted>"
            }
        }
        for secret in secrets where secret.count >= 3 {
            result = result.replacingOccurrences(of: secret, with: "<redacted>")
        }
        guard result.contains("://") else { return result }
        return result.replacing(#/(?i)\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/#) { match in
            redactURL(String(match.output))
        }
    }

    /// A URL for a message.
    public static func redact(_ url: URL) -> String { redactURL(url.absoluteString) }

    static func redactURL(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://") else { return text }
        var head = String(text[..<schemeEnd.upperBound])
        var rest = String(text[schemeEnd.upperBound...])
        // user:password@host: the password goes.
        if let at = rest.firstIndex(of: "@"), !rest[..<at].contains("/"), let colon = rest[..<at].firstIndex(of: ":") {
            head += String(rest[..<colon]) + ":<redacted>@"
            rest = String(rest[rest.index(after: at)...])
        }
        guard let question = rest.firstIndex(of: "?") else { return head + rest }
        let path = String(rest[...question])
        var query = String(rest[rest.index(after: question)...])
        var fragment = ""
        if let hash = query.firstIndex(of: "#") {
            fragment = String(query[hash...])
            query = String(query[..<hash])
        }
        let items = query.split(separator: "&", omittingEmptySubsequences: false).map { item -> String in
            guard let equals = item.firstIndex(of: "=") else { return String(item) }
            let name = item[..<equals]
            let value = item[item.index(after: equals)...]
            let plain = name.removingPercentEncoding ?? String(name)
            if value.isEmpty || shownQueryParameters.contains(plain.lowercased()) { return String(item) }
            return String(name) + "=<redacted>"
        }
        return head + path + items.joined(separator: "&") + fragment
    }
}
