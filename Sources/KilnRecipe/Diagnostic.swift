/// Where something was written: a recipe file, line and column (1-based).
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// One problem in a recipe, with the fix.
public struct Diagnostic: Error, Sendable, Hashable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String
    /// What to write instead.
    public var hint: String?

    /// Longer messages are cut: a hostile recipe's megabyte value must not become a megabyte of output.
    public static let maxMessageLength = 400

    public init(_ location: SourceLocation, _ message: String, hint: String? = nil) {
        self.location = location
        self.message = Self.shortened(message)
        self.hint = hint.map(Self.shortened)
    }

    static func shortened(_ text: String) -> String {
        text.count > maxMessageLength ? text.prefix(maxMessageLength) + "…" : text
    }

    /// `file:line:col: error: message` and, indented below, the hint (the format editors and CI logs link).
    public var description: String {
        "\(location): error: \(message)" + (hint.map { "\n    hint: \($0)" } ?? "")
    }
}

/// Every problem found in a set of recipes: all of them at once, not only the first.
public struct RecipeError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics.sorted {
            ($0.location.file, $0.location.line, $0.location.column) < (
                $1.location.file, $1.location.line, $1.location.column
            )
        }
    }

    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
            + "\n\(diagnostics.count) error\(diagnostics.count == 1 ? "" : "s") in recipes"
    }
}
