import Foundation

/// One `deb` source from the host's apt configuration.
public struct AptSource: Sendable, Hashable {
    public var uri: String
    public var suites: [String]
    public var components: [String]
    /// The keyring that signs this source (`Signed-By` / `[signed-by=…]`), when given as a file.
    public var signedBy: String?
}

/// Reads the host's apt sources: `/etc/apt/sources.list` and `sources.list.d/*.list` (one-line format) and
/// `sources.list.d/*.sources` (deb822). Only `deb` entries count; `deb-src` and disabled entries do not.
public enum AptSources {
    public static func load(root: String = "/etc/apt") -> [AptSource] {
        var result: [AptSource] = []
        if let text = try? String(contentsOfFile: root + "/sources.list", encoding: .utf8) {
            result += parseList(text)
        }
        let directory = root + "/sources.list.d"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        for name in names {
            guard let text = try? String(contentsOfFile: directory + "/" + name, encoding: .utf8) else { continue }
            if name.hasSuffix(".list") { result += parseList(text) }
            if name.hasSuffix(".sources") { result += parseDeb822(text) }
        }
        return result
    }

    /// `deb [option=value …] URI SUITE [COMPONENT…]` lines.
    public static func parseList(_ text: String) -> [AptSource] {
        var result: [AptSource] = []
        for raw in text.split(separator: "\n") {
            let line = raw.prefix { $0 != "#" }
            var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard words.first == "deb" else { continue }
            words.removeFirst()
            var signedBy: String?
            if words.first?.hasPrefix("[") == true {
                var options: [String] = []
                while let word = words.first {
                    words.removeFirst()
                    options.append(word.trimmingCharacters(in: CharacterSet(charactersIn: "[]")))
                    if word.hasSuffix("]") { break }
                }
                for option in options where option.hasPrefix("signed-by=") {
                    signedBy = String(option.dropFirst("signed-by=".count))
                }
            }
            guard words.count >= 2 else { continue }
            result.append(
                AptSource(
                    uri: words[0], suites: [words[1]], components: Array(words.dropFirst(2)), signedBy: signedBy))
        }
        return result
    }

    /// deb822 `.sources` paragraphs: `Types`, `URIs`, `Suites`, `Components`, `Signed-By`, `Enabled`.
    public static func parseDeb822(_ text: String) -> [AptSource] {
        var result: [AptSource] = []
        for stanza in Control.parse(Data(text.utf8)) {
            let types = (stanza["Types"] ?? "").split(whereSeparator: \.isWhitespace)
            guard types.contains("deb"), stanza["Enabled"]?.lowercased() != "no" else { continue }
            let words = { (field: String) in
                (stanza[field] ?? "").split(whereSeparator: \.isWhitespace).map(String.init)
            }
            // Signed-By is a file path, or an embedded key block (then the default keyrings apply here).
            let signedBy = stanza["Signed-By"].flatMap { value -> String? in
                let path = value.trimmingCharacters(in: .whitespacesAndNewlines)
                return path.hasPrefix("/") && !path.contains("\n") ? path : nil
            }
            for uri in words("URIs") {
                result.append(
                    AptSource(uri: uri, suites: words("Suites"), components: words("Components"), signedBy: signedBy))
            }
        }
        return result
    }

    /// The first source serving `suite`.
    public static func source(for suite: String, in sources: [AptSource]) -> AptSource? {
        sources.first { $0.suites.contains(suite) }
    }
}
