/// The distribution spec's grammar for a tag, `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`, ASCII only: the one
/// definition every command, the recipe parser and the reference parser use. (A regular expression's `\w`
/// accepts any Unicode letter, which registries refuse.)
public enum OCITag {
    /// What a tag may be, for messages.
    public static let rule = "1 to 128 ASCII letters, digits, _ . - (not starting with . or -)"

    public static func isValid(_ text: some StringProtocol) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...128).contains(bytes.count) else { return false }
        func word(_ byte: UInt8) -> Bool {
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x5F
        }
        return word(bytes[0]) && bytes.dropFirst().allSatisfy { word($0) || $0 == 0x2E || $0 == 0x2D }
    }
}
