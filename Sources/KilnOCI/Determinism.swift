/// The determinism contract's version. It is part of every layer cache key, so a store never reuses a
/// layer written under another version; bump it whenever a change alters the bytes Kiln writes for the
/// same inputs (tar encoding, compressor, JSON), and update the golden digests in the same commit.
public enum Encoding {
    public static let version = 5
}
