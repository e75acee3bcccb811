import Foundation
import Yams

/// A YAML value built in code, for the deployment files Kiln writes (compose, Kubernetes, registries.d,
/// ClusterImagePolicy). libyaml (through Yams) writes it, so no value is ever quoted by hand: a name or an
/// environment value holding `: `, `#`, quotes, line breaks or a leading `-` reads back as itself.
/// Strings are always double-quoted, so no reader takes `no`, `y`, `1e3` or `0755` for a boolean or a number
/// (YAML 1.1 readers such as go-yaml v2 and PyYAML know more of those than YAML 1.2 does).
public indirect enum YAMLValue: Sendable {
    case string(String)
    case int(Int)
    case bool(Bool)
    /// A block sequence: one item a line.
    case list([YAMLValue])
    /// A flow sequence of strings on one line (`["CMD", "komodo-ready"]`), for commands.
    case flow([String])
    /// A mapping, in the order given: readers of Kubernetes files expect `apiVersion` and `kind` first.
    case map([(String, YAMLValue)])
    /// A multi-line string kept as its lines (`|`): PEM keys.
    case lines(String)

    /// Block sequence of strings.
    public static func strings(_ items: [String]) -> YAMLValue { .list(items.map(YAMLValue.string)) }

    var node: Node {
        switch self {
        case .string(let text): return .scalar(.init(text, Tag(.str), .doubleQuoted))
        case .int(let number): return .scalar(.init(String(number), Tag(.int), .plain))
        case .bool(let flag): return .scalar(.init(flag ? "true" : "false", Tag(.bool), .plain))
        case .list(let items): return .sequence(.init(items.map(\.node), Tag(.seq), .block))
        case .flow(let items): return .sequence(.init(items.map { YAMLValue.string($0).node }, Tag(.seq), .flow))
        case .lines(let text): return .scalar(.init(text, Tag(.str), .literal))
        case .map(let pairs):
            // Keys plain where Yams finds that unambiguous (`app.kubernetes.io/name`), quoted otherwise.
            return .mapping(.init(pairs.map { (Node.scalar($0.0.represented()), $0.1.node) }, Tag(.map), .block))
        }
    }
}

extension YAMLValue: ExpressibleByStringInterpolation, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: YAMLValue...) { self = .list(elements) }
    /// A `nil` value leaves its key out, so optional members read as one literal.
    public init(dictionaryLiteral elements: (String, YAMLValue?)...) {
        self = .map(elements.compactMap { key, value in value.map { (key, $0) } })
    }
}

/// A YAML file: comment lines, then its documents.
public struct YAMLFile: Sendable {
    public var comments: [String]
    public var documents: [YAMLValue]
    /// `---` before every document (a file of several, or one a tool splits on `---`).
    public var markDocuments: Bool

    public init(comments: [String] = [], documents: [YAMLValue], markDocuments: Bool = false) {
        self.comments = comments
        self.documents = documents
        self.markDocuments = markDocuments
    }

    /// The file's text. A comment line holding a line break (a value read from an image) continues as a
    /// comment line of its own rather than ending the comment.
    public var text: String {
        let header = comments.flatMap { $0.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) }
            .map { $0.isEmpty ? "#\n" : "# \($0)\n" }.joined()
        // width -1: a long value stays on its line.
        do {
            return header + (try Yams.serialize(nodes: documents.map(\.node), width: -1, explicitStart: markDocuments))
        } catch {
            // libyaml refuses only a malformed event stream, which no tree of this enum makes (any string is
            // escaped): a failure here is a bug in this file, never an input to report or an empty file to write.
            preconditionFailure("libyaml refused a YAMLValue tree: \(error)")
        }
    }
}
