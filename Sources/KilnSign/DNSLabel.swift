/// Names Kubernetes and compose accept (DNS-1123 labels), made from any text: a path, an image name, a
/// registry scope. One place, so a deployment's objects and its ClusterImagePolicy are named alike.
public enum DNSLabel {
    /// `/home/komodo/.komodo` → `home-komodo-komodo`: lower-case ASCII letters and digits, every other run of
    /// characters one `-`, none at either end; `x` when nothing is left.
    public static func slug(_ text: String) -> String {
        var out = ""
        for c in text.lowercased() {
            if c.isASCII && (c.isLetter || c.isNumber) {
                out.append(c)
            } else if !out.isEmpty && !out.hasSuffix("-") {
                out.append("-")
            }
        }
        while out.hasSuffix("-") { out.removeLast() }
        return out.isEmpty ? "x" : out
    }

    /// `slug` cut to `max` characters (63 for a label), not ending in `-`.
    public static func label(_ text: String, max: Int = 63) -> String {
        var label = String(slug(text).prefix(max))
        while label.hasSuffix("-") { label.removeLast() }
        return label
    }
}
