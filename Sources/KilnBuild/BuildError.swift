import KilnOCI

/// What can stop a build, with what a person needs to fix it.
public enum BuildError: Error, CustomStringConvertible {
    case unreadableInput(path: String, reason: String)
    case recipe(String)
    case failedImage(name: String, underlying: String)

    public var description: String {
        switch self {
        case .unreadableInput(let path, let reason):
            return "cannot read input \(path): \(reason)"
        case .recipe(let text):
            return text
        case .failedImage(let name, let underlying):
            return "building \(name) failed: \(underlying)"
        }
    }
}
