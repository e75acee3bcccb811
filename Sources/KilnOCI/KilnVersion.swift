/// Kiln's own release version: what `kiln --version` prints. It is not an input to any digest (the
/// determinism contract has its own version, `Encoding.version`), so a new Kiln release moves no image.
public enum KilnVersion {
    public static let current = "0.5.0"
}
