/// What a product adds to the generic matrix: fields computed from an entry rather than read from it, and
/// fields an entry must be given before its templates are rendered. The recipe language knows none of these
/// rules itself; a caller passes them to `RecipeSet.load` (Kiln passes Komodo's, from the KilnKomodo module).
public protocol MatrixDerivation: Sendable {
    /// The fields this derivation computes when an entry does not give them (`{{p2p_port}}`, …).
    var fields: Set<String> { get }

    /// Fields that describe the image rather than the program, so `{{args}}` never passes them on as flags,
    /// whether an entry gives them or not.
    var imageFields: Set<String> { get }

    /// Fields that lead `{{args}}`, in this order (the rest follow in name order), and whose first present
    /// value names an entry in messages.
    var leadingFields: [String] { get }

    /// The value of one of `fields` for an entry (values as text, lists joined by commas), given the matrix's
    /// `env`; nil when it cannot be computed without more (the template is then reported missing). Throws a
    /// `MatrixDerivationError` when the entry makes it impossible.
    func value(of field: String, entry: [String: String], environment: [String: String]) throws -> String?

    /// Values to add to an entry before templating (what the product needs an entry to say), or throws a
    /// `MatrixDerivationError`.
    func completion(of entry: [String: String], environment: [String: String]) throws -> [String: String]
}

/// Why a derivation could not complete or compute an entry's value; reported at the template's or matrix's
/// location.
public struct MatrixDerivationError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var hint: String

    public init(_ message: String, hint: String) {
        self.message = message
        self.hint = hint
    }

    public var description: String { message }
}
