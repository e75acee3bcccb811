import ArgumentParser
import Foundation
import KilnBuild
import KilnRecipe

/// How the commands that run the pipeline fail (README "Exit codes"): recipe problems exit 65 with every
/// location, a difference from the lock under `--locked` exits 1, inputs that could not be provided exit 66;
/// each prints only the diagnostics.
enum BuildFailure {
    static func loadRecipes(_ paths: [String]) throws -> RecipeSet {
        try exitCodesSync { try RecipeSet.load(paths: paths.isEmpty ? ["recipes"] : paths) }
    }

    static func exitCodes<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw map(error)
        }
    }

    static func exitCodesSync<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw map(error)
        }
    }

    static func map(_ error: Error) -> Error {
        switch error {
        case let error as RecipeError:
            report(error.description)
            return ExitCode(65)
        case BuildError.lockMismatch, BuildError.lockedImageDiffers:
            // A difference from the lock is a finding, as for `kiln verify`: exit 1.
            report("\(error)")
            return ExitCode(ExitStatus.differs)
        case BuildError.inputsMissing:
            report("\(error)")
            return ExitCode(66)
        case BuildError.platformNotBuilt:
            report("\(error)")
            return ExitCode(ExitStatus.usage)
        default:
            return error
        }
    }

    static func report(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
