import Foundation
import KilnDebian
import KilnHTTP
import KilnOCI
import KilnRecipe
import KilnStore
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// One `url` input of a recipe.
public struct RemoteInput: Sendable, Hashable {
    public var url: String
    /// From the recipe, else from the lock.
    public var sha256: Digest?
    /// Where the recipe names it (for errors).
    public var location: SourceLocation
    /// True when the sha256 is written in the recipe (not only in the lock).
    public var pinnedInRecipe: Bool
}

/// What fetching inputs reports.
public enum InputEvent: Sendable {
    case found(url: String, digest: Digest, source: String)
    case downloading(url: String, done: Int64, total: Int64?)
    case downloaded(url: String, digest: Digest, size: Int64, seconds: Double)
    /// An input without a pinned sha256 was downloaded and its digest trusted (only `kiln lock` does this).
    case trusted(url: String, digest: Digest)
}

extension InputEvent {
    /// Where a download's checksum is published when the download is a GitHub release asset
    /// (`https://github.com/OWNER/REPO/releases/download/TAG/FILE`): the release's notes,
    /// `https://github.com/OWNER/REPO/releases/tag/TAG`, the address `kiln lock` prints beside a digest it took on
    /// trust. Nil for any other URL.
    public static func releaseNotes(forDownload url: String) -> String? {
        guard let components = URLComponents(string: url), components.scheme == "https",
            components.host?.lowercased() == "github.com"
        else { return nil }
        let parts = components.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard parts.count == 6, parts[2] == "releases", parts[3] == "download" else { return nil }
        return "https://github.com/\(parts[0])/\(parts[1])/releases/tag/\(parts[4])"
    }
}

public struct InputOptions: Sendable {
    public var cache: DownloadCache
    /// Directories of pre-seeded inputs, found by sha256 (`DIR/<hex>`, `DIR/sha256/<hex>`) or by the URL's file
    /// name (verified).
    public var sources: [String]
    /// Never touch the network: inputs must be in the cache or a sources directory.
    public var offline: Bool
    /// Download inputs that no recipe or lock pins and record what they turned out to be (`kiln lock`).
    public var trustUnpinned: Bool
    public var http: HTTPOptions

    public init(
        cache: DownloadCache = .default(), sources: [String] = [], offline: Bool = false, trustUnpinned: Bool = false,
        http: HTTPOptions = HTTPOptions()
    ) {
        self.cache = cache
        self.sources = sources
        self.offline = offline
        self.trustUnpinned = trustUnpinned
        self.http = http
    }
}

/// Gathers and fetches every `url` input of a set of recipes before anything is built.
public enum RemoteInputs {

    /// Makes every input available in the cache. Inputs found nowhere are reported together, each with its URL,
    /// its recipe line and how to provide it, before anything is built. Returns url → digest.
    /// Downloads go through `shared` when given (the caller shuts it down), else through a transport of their
    /// own; offline, none is ever made.
    public static func fetch(
        _ inputs: [RemoteInput], options: InputOptions, transport shared: HTTPTransport? = nil,
        events: @escaping @Sendable (InputEvent) -> Void = { _ in }
    ) async throws -> [String: Digest] {
        var resolved: [String: Digest] = [:]
        var problems: [Diagnostic] = []
        var transport = shared
        for input in inputs {
            if let digest = input.sha256 {
                if options.cache.contains(digest) {
                    options.http.logger.debug("input \(input.url): in the download cache as \(digest)")
                    resolved[input.url] = digest
                    continue
                }
                if let source = try seeded(input, digest: digest, options: options) {
                    events(.found(url: input.url, digest: digest, source: source))
                    resolved[input.url] = digest
                    continue
                }
            } else if !options.trustUnpinned {
                problems.append(
                    Diagnostic(
                        input.location, "\(input.url) has no sha256 and the lock does not pin it",
                        hint:
                            "add `sha256:` with the published checksum, or run `kiln lock` once with network to record it"
                    ))
                continue
            }
            if options.offline {
                problems.append(missing(input, reason: "not in the download cache or a sources directory (offline)"))
                continue
            }
            do {
                let open = try transport ?? HTTPTransport(options: options.http)
                transport = open
                let digest = try await download(input, transport: open, options: options, events: events)
                resolved[input.url] = digest
            } catch BuildError.recipe(let location, let reason) {
                problems.append(Diagnostic(location, reason))
            } catch let error as HTTPError {
                if case .digestMismatch = error {
                    problems.append(
                        Diagnostic(
                            input.location, error.description,
                            hint: "if the publisher replaced the file on purpose, check it and update the sha256"))
                } else {
                    problems.append(missing(input, reason: "download failed: \(error)"))
                }
            } catch {
                problems.append(missing(input, reason: "download failed: \(error)"))
            }
        }
        if let transport, shared == nil {
            await transport.shutdown()
        }
        if !problems.isEmpty { throw RecipeError(problems) }
        return resolved
    }

    static func missing(_ input: RemoteInput, reason: String) -> Diagnostic {
        let name = (input.url as NSString).lastPathComponent
        let hex = input.sha256?.encoded ?? "<sha256>"
        return Diagnostic(
            input.location, "input \(input.url) is missing: \(reason)",
            hint:
                "download it on a machine with network and put it in a --sources directory (as \(name) or \(hex)), or build with network"
        )
    }

    /// Looks for the input in the sources directories; adopts it into the cache when its content matches.
    static func seeded(_ input: RemoteInput, digest: Digest, options: InputOptions) throws -> String? {
        let name = (URL(string: input.url)?.lastPathComponent).flatMap { $0.isEmpty ? nil : $0 }
        for directory in options.sources {
            var candidates = ["\(directory)/\(digest.encoded)", "\(directory)/sha256/\(digest.encoded)"]
            if let name { candidates.append("\(directory)/\(name)") }
            for candidate in candidates where FileManager.default.fileExists(atPath: candidate) {
                if try options.cache.adopt(file: candidate, as: digest) { return candidate }
            }
        }
        return nil
    }

    static func download(
        _ input: RemoteInput, transport: HTTPTransport, options: InputOptions,
        events: @escaping @Sendable (InputEvent) -> Void
    ) async throws -> Digest {
        guard let url = URL(string: input.url), let scheme = url.scheme, ["http", "https"].contains(scheme) else {
            throw BuildError.recipe(input.location, "'\(input.url)' is not an http(s) URL")
        }
        let started = Date()
        // Filed under the digest it has, once checked against the pin (or, unpinned under `kiln lock`, trusted).
        let writer = try options.cache.writer()
        defer { writer.discard() }
        let url0 = input.url
        let (response, digest, size) = try await transport.download(
            HTTPRequest(.GET, url), into: writer, expected: input.sha256,
            progress: { done, total in events(.downloading(url: url0, done: done, total: total)) })
        guard response.status == 200, let digest else {
            throw BuildError.recipe(input.location, "GET \(input.url) answered HTTP \(response.status)")
        }
        try writer.commit(as: options.cache.path(for: digest))
        if input.sha256 == nil {
            events(.trusted(url: input.url, digest: digest))
        }
        events(.downloaded(url: input.url, digest: digest, size: size, seconds: Date().timeIntervalSince(started)))
        return digest
    }
}
