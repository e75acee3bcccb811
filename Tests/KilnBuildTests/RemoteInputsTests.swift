import Foundation
import KilnOCI
import KilnRecipe
import Testing

@testable import KilnBuild

/// Which sha256 an input gets: the recipe's, else the lock's; disagreements are reported at the recipe line.
@Suite struct RemoteInputsTests {
    static let pinned = Digest.sha256("recipe")
    static let locked = Digest.sha256("lock")

    func recipes() throws -> [Recipe] {
        let yaml = """
            name: a
            version: "1"
            layers:
              - name: l
                add:
                  - url: https://example.invalid/a.bin
                    sha256: \(Self.pinned.encoded)
                    to: /a.bin
                  - url: https://example.invalid/b.bin
                    to: /b.bin
            """
        let (recipes, problems) = RecipeSet.parse(yaml, file: "/r/a.yaml")
        try #require(problems.isEmpty)
        return recipes
    }

    @Test func lockFillsInWhatTheRecipeLeavesOut() throws {
        var lock = LockFile()
        lock.inputs["https://example.invalid/b.bin"] = Self.locked
        let inputs = try RemoteInputs.collect(recipes(), lock: lock)
        #expect(inputs.map(\.sha256) == [Self.pinned, Self.locked])
        #expect(inputs.map(\.pinnedInRecipe) == [true, false])
    }

    @Test func recipeAndLockDisagreeingIsAnErrorUnlessLocking() throws {
        var lock = LockFile()
        lock.inputs["https://example.invalid/a.bin"] = Self.locked
        #expect(throws: RecipeError.self) { try RemoteInputs.collect(recipes(), lock: lock) }
        let locking = try RemoteInputs.collect(recipes(), lock: lock, recipesWin: true)
        #expect(locking.first?.sha256 == Self.pinned)
    }
}
