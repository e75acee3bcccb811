import KilnOCI
import KilnRecipe

/// What can stop a build, with what a person needs to fix it.
public enum BuildError: Error, CustomStringConvertible {
    case unreadableInput(path: String, reason: String)
    /// A recipe line that cannot be built as written: where it is, and why (with the fix).
    case recipe(SourceLocation, String)
    /// A stage was handed a value the stage before it should have made: a bug in Kiln, not in the recipes.
    case internalError(String)
    /// `--cache-from`/`--cache-to` names no registry repository.
    case cacheReference(String, reason: String)
    /// The lock file cannot be read as a lock.
    case invalidLock(reason: String)
    case failedImage(name: String, underlying: String)
    /// Remote inputs that could not be made available (each with its recipe line and how to provide it).
    case inputsMissing(RecipeError)
    /// `--locked`: the recipes pin inputs the lock does not record.
    case lockMismatch([String], lockPath: String)
    /// `--locked`: an image built to another digest than the lock records (nothing was tagged).
    case lockedImageDiffers(String)
    /// The lock a build must update cannot be written (nothing was tagged).
    case lockNotWritable(path: String, reason: String)
    /// `--platform` names platforms a recipe does not build (at the recipe's line), or is combined with `--locked`.
    case platformNotBuilt(at: SourceLocation?, String)

    /// The one place build errors become text. Located ones read `FILE:LINE:COL: error: reason`, as compilers
    /// print them, so editors and CI logs link them to the recipe line.
    public var description: String {
        switch self {
        case .unreadableInput(let path, let reason):
            return "cannot read input \(path): \(reason)"
        case .recipe(let location, let reason):
            return "\(location): error: \(reason)"
        case .internalError(let reason):
            return "internal error: \(reason)"
        case .cacheReference(let text, let reason):
            return "error: --cache-from/--cache-to \(text): \(reason)"
        case .invalidLock(let reason):
            return "\(reason): not a valid kiln lock file. Restore it from git, or delete it and run `kiln lock`."
        case .failedImage(let name, let underlying):
            return "building \(name) failed: \(underlying)"
        case .inputsMissing(let error):
            return error.description + "\nnothing was built: provide the inputs above first"
        case .platformNotBuilt(let location?, let reason):
            return BuildError.recipe(location, reason).description
        case .lockedImageDiffers(let message), .platformNotBuilt(nil, let message):
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
