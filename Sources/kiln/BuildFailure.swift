import ArgumentParser
import Foundation
import KilnBuild
import KilnRecipe

/// How the commands that run the pipeline fail: recipe and lock problems exit 65 (data error) with every
/// location, inputs that could not be provided exit 66 (no input); both print only the diagnostics.
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
        case BuildError.lockMismatch:
            report("\(error)")
            return ExitCode(65)
        case BuildError.inputsMissing:
            report("\(error)")
            return ExitCode(66)
        default:
            return error
        }
    }

    static func report(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
