import KilnOCI
import KilnRecipe

/// What can stop a build, with what a person needs to fix it.
public enum BuildError: Error, CustomStringConvertible {
    case unreadableInput(path: String, reason: String)
    case recipe(String)
    case failedImage(name: String, underlying: String)
    /// Remote inputs that could not be made available (each with its recipe line and how to provide it).
    case inputsMissing(RecipeError)
    /// `--locked`: the recipes pin inputs the lock does not record.
    case lockMismatch([String], lockPath: String)
    /// `--locked`: an image built to another digest than the lock records (nothing was tagged).
    case lockedImageDiffers(String)
    /// The lock a build must update cannot be written (nothing was tagged).
    case lockNotWritable(path: String, reason: String)
    /// `--platform` names platforms a recipe does not build, or is combined with `--locked`.
    case platformNotBuilt(String)

    public var description: String {
        switch self {
        case .unreadableInput(let path, let reason):
            return "cannot read input \(path): \(reason)"
        case .recipe(let text):
            return text
        case .failedImage(let name, let underlying):
            return "building \(name) failed: \(underlying)"
        case .inputsMissing(let error):
            return error.description + "\nnothing was built: provide the inputs above first"
        case .lockedImageDiffers(let message), .platformNotBuilt(let message):
            return message
        case .lockNotWritable(let path, let reason):
            return
                "cannot write the lock \(path) (\(reason)); nothing was tagged. Make its directory writable, give --lock FILE, or build with --locked, which never writes the lock."
        case .lockMismatch(let problems, let lockPath):
            return problems.joined(separator: "\n")
                + "\n--locked: \(lockPath) does not match the recipes; nothing was built. Review, then run `kiln lock` or build without --locked."
        }
    }
}
