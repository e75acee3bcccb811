import KilnOCI
import Yams

/// Values whose grammar is stricter than "a string": a wrong one used to be accepted and turned into an image
/// that fails only when it runs (a user with two colons, signal 99, a Windows platform) or into account files
/// another line can be injected into. Each is refused here with its location and the fix.
extension RecipeParser {
    /// `USER[:GROUP]`, each a name or a numeric id, as the runtime parses the config's `User`.
    mutating func user(_ node: Node) -> String? {
        guard let text = string(node, "user") else { return nil }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), parts.allSatisfy({ Self.isAccountName($0) || Self.isID($0) }) else {
            report(
                node, "user '\(text)' is not USER or USER:GROUP",
                hint: "write a name or a number, optionally with a group: `user: komodo` or `user: 3003:3003`")
            return nil
        }
        return text
    }

    /// A name for /etc/passwd or /etc/group: no `:`, `,` or line breaks, which would split its line.
    mutating func accountName(_ node: Node, _ what: String, _ given: String? = nil) -> String? {
        guard let text = given ?? string(node, what) else { return nil }
        guard Self.isAccountName(text) else {
            report(
                node, "\(what) '\(text)' is not a valid account name",
                hint: "start with a letter or _, then letters, digits, _ . - (at most 32), e.g. komodo")
            return nil
        }
        return text
    }

    /// An absolute path for /etc/passwd (home, shell): no `:` or line breaks.
    mutating func accountPath(_ node: Node, _ what: String) -> String? {
        guard let path = absolutePath(node, what) else { return nil }
        guard !path.contains(":") else {
            report(node, "\(what) '\(path)' must not contain ':'", hint: "/etc/passwd separates fields with ':'")
            return nil
        }
        return path
    }

    static func isAccountName(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, bytes.count <= 32 else { return false }
        func letter(_ b: UInt8) -> Bool { (0x61...0x7A).contains(b) || (0x41...0x5A).contains(b) || b == 0x5F }
        func rest(_ b: UInt8) -> Bool { letter(b) || (0x30...0x39).contains(b) || b == 0x2E || b == 0x2D }
        let body = bytes.last == UInt8(ascii: "$") ? bytes.dropLast() : bytes[...]  // Samba machine accounts
        return letter(first) && body.dropFirst().allSatisfy(rest)
    }

    static func isID(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { (0x30...0x39).contains($0) } && (Int(text) ?? -1) <= 0x7FFF_FFFF
    }

    /// Architectures an OCI image for Linux names (Go's GOARCH values, as the image-spec uses them).
    static let architectures: Set<String> = [
        "386", "amd64", "arm", "arm64", "loong64", "mips", "mipsle", "mips64", "mips64le", "ppc64", "ppc64le",
        "riscv64", "s390x",
    ]

    /// `linux/ARCH[/VARIANT]`: Kiln builds Linux images (its layers, accounts and packages are Linux's).
    mutating func platform(_ node: Node, _ text: String) -> Platform? {
        guard let platform = Platform(parsing: text) else {
            report(node, "'\(text)' is not a platform", hint: "write os/architecture, e.g. linux/amd64")
            return nil
        }
        guard platform.os == "linux" else {
            report(
                node, "'\(text)': Kiln builds Linux images only, not \(platform.os)",
                hint: "write linux/ARCH, e.g. linux/amd64 or linux/arm64")
            return nil
        }
        guard Self.architectures.contains(platform.architecture) else {
            report(
                node, "'\(platform.architecture)' is not an architecture",
                hint: "write one of " + Self.architectures.sorted().joined(separator: ", "))
            return nil
        }
        if let variant = platform.variant,
            !(variant.count >= 2 && variant.hasPrefix("v") && variant.dropFirst().allSatisfy(\.isASCIIDigit))
        {
            report(node, "'\(variant)' is not a platform variant", hint: "write v7, v8 (arm) or v2, v3 (amd64)")
            return nil
        }
        return platform
    }

    /// At least one platform, each once.
    mutating func platformsCheck(_ node: Node, _ platforms: [Platform]) {
        if case .sequence(let seq) = node, seq.isEmpty {
            report(node, "platforms is empty", hint: "list at least one, e.g. [linux/amd64], or leave the key out")
        }
        if Set(platforms).count != platforms.count {
            report(node, "a platform is listed twice", hint: "list each platform once")
        }
    }

    /// A layer's or an `add` entry's `platforms:`: one platform or a list, each written as in the recipe's own
    /// `platforms:`.
    mutating func platformSelector(_ node: Node) -> [Platform]? {
        guard let list = stringList(node, "platforms") else { return nil }
        if list.isEmpty {
            report(node, "platforms is empty", hint: "name the platforms this is for, or leave the key out")
            return nil
        }
        let platforms = list.compactMap { platform(node, $0) }
        return platforms.count == list.count ? platforms : nil
    }

    /// Every `platforms:` of a layer or an `add` entry names platforms the recipe builds, and every layer adds
    /// something on at least one of them.
    mutating func checkPlatformSelectors(_ recipe: Recipe) {
        let built = recipe.platforms.map(\.description).joined(separator: ", ")
        /// Reports the platforms the recipe does not build; true when there is none.
        func check(_ selector: [Platform]?, at location: SourceLocation) -> Bool {
            let unknown = (selector ?? []).filter { !recipe.platforms.contains($0) }
            for platform in unknown {
                diagnostics.append(
                    Diagnostic(
                        location, "'\(platform)' is not one of the recipe's platforms (\(built))",
                        hint: "add it to the recipe's `platforms:`, or name one of those"))
            }
            return unknown.isEmpty
        }
        for layer in recipe.layers {
            var known = check(layer.platforms, at: layer.location)
            for case .add(let add) in layer.items where !check(add.platforms, at: add.location) { known = false }
            if known, !layer.items.isEmpty, !recipe.platforms.contains(where: { layer.selected(for: $0) != nil }) {
                diagnostics.append(
                    Diagnostic(
                        layer.location, "layer '\(layer.name)' adds nothing on any platform it is built for",
                        hint: "make the layer's `platforms:` and its entries' `platforms:` overlap"))
            }
        }
    }

    /// Linux's signal names (without the `SIG` aliases runtimes also accept, so a recipe has one spelling).
    static let signals: Set<String> = [
        "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1",
        "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP",
        "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO",
        "SIGPWR", "SIGSYS", "SIGRTMIN", "SIGRTMAX",
    ]

    /// A signal name, `SIGRTMIN+n`/`SIGRTMAX-n`, or a number 1–64 (Linux has 64 signals).
    mutating func signal(_ node: Node) -> String? {
        guard let text = string(node, "stop-signal") else { return nil }
        func offset(_ prefix: String) -> Bool {
            guard text.hasPrefix(prefix), let n = Int(text.dropFirst(prefix.count)) else { return false }
            return (1...30).contains(n) && text.dropFirst(prefix.count).allSatisfy(\.isASCIIDigit)
        }
        if Self.signals.contains(text) || offset("SIGRTMIN+") || offset("SIGRTMAX-") { return text }
        if text.allSatisfy(\.isASCIIDigit), let n = Int(text), (1...64).contains(n) { return text }
        let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
        report(
            node, "unknown stop signal '\(shown)'",
            hint: "write a signal name such as SIGINT or SIGTERM, or a number from 1 to 64")
        return nil
    }

    /// 3 or 4 octal digits, quoted: unquoted, YAML 1.1 reads `0755` as 493 and YAML 1.2 reads `755` as the
    /// decimal 755, so a recipe's meaning would depend on the tool reading it. Kiln takes the digits as octal
    /// and asks for quotes so every tool agrees.
    mutating func mode(_ node: Node) -> UInt32? {
        guard case .scalar(let scalar) = node else {
            report(node, "mode must be an octal number", hint: "write it quoted, e.g. mode: \"0755\"")
            return nil
        }
        let text = scalar.string
        let octal = (3...4).contains(text.count) && text.utf8.allSatisfy { (0x30...0x37).contains($0) }
        guard octal, let value = UInt32(text, radix: 8) else {
            let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
            report(node, "'\(shown)' is not a file mode", hint: "write 3 or 4 octal digits, quoted: mode: \"0755\"")
            return nil
        }
        if scalar.style == .plain {
            report(
                node, "mode \(text) must be quoted: unquoted, YAML tools read it as a decimal or octal number",
                hint: "write mode: \"\(text)\"")
            return nil
        }
        return value
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isWholeNumber }
}
