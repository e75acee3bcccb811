import Foundation
import Testing

@testable import KilnDebian

/// The resolver over fake indexes: every rule it applies, and the errors naming what is wrong.
@Suite struct ResolverTests {
    static func package(
        _ name: String, _ version: String = "1.0", architecture: String = "amd64", depends: String? = nil,
        preDepends: String? = nil, provides: String? = nil, conflicts: String? = nil, breaks: String? = nil
    ) -> BinaryPackage {
        BinaryPackage(
            name: name, version: version, architecture: architecture,
            filename: "pool/main/\(name)_\(version)_\(architecture).deb", size: 1,
            sha256: String(repeating: "0", count: 64),
            depends: depends, preDepends: preDepends, provides: provides, conflicts: conflicts, breaks: breaks)
    }

    func names(_ packages: [BinaryPackage]) -> [String] { packages.map { "\($0.name)=\($0.version)" } }

    /// A Packages stanza reads as the same package the memberwise init makes from its fields.
    @Test func stanzaReadsAsItsFields() throws {
        let stanza = Stanza(fields: [
            ("Package", "libfoo1"), ("Version", "2.0-1"), ("Architecture", "amd64"),
            ("Filename", "pool/main/f/foo/libfoo1_2.0-1_amd64.deb"), ("Size", "42"),
            ("SHA256", String(repeating: "AB", count: 32)), ("Source", "foo (2.0-1)"), ("Multi-Arch", "same"),
            ("Depends", "libc6 (>= 2.36)"), ("Pre-Depends", "dpkg"), ("Provides", "libfoo"),
            ("Conflicts", "libfoo0"), ("Breaks", "bar (<< 1)"),
        ])
        let read = try #require(BinaryPackage(stanza))
        let made = BinaryPackage(
            name: "libfoo1", version: "2.0-1", architecture: "amd64",
            filename: "pool/main/f/foo/libfoo1_2.0-1_amd64.deb",
            size: 42, sha256: String(repeating: "ab", count: 32), source: "foo", depends: "libc6 (>= 2.36)",
            preDepends: "dpkg", provides: "libfoo", conflicts: "libfoo0", breaks: "bar (<< 1)", multiArch: "same")
        #expect(read == made)
        #expect(read.depends.first?.first?.name == "libc6")
        #expect(BinaryPackage(Stanza(fields: [("Package", "x")])) == nil, "a stanza without a version is no package")
    }

    @Test func closureOverDependsAndPreDependsSorted() throws {
        let resolver = Resolver(
            packages: [
                Self.package("app", depends: "libz (>= 1.2), libdata", preDepends: "libc"),
                Self.package("libz", "1.3", depends: "libc"),
                Self.package("libz", "1.1"),
                Self.package("libc", "2.36"),
                Self.package("libdata", architecture: "all"),
                Self.package("unrelated"),
                Self.package("other-arch", architecture: "arm64"),
            ], architecture: "amd64")
        #expect(try names(resolver.resolve(["app"])) == ["app=1.0", "libc=2.36", "libdata=1.0", "libz=1.3"])
    }

    @Test func essentialPackagesAreNotPulledImplicitly() throws {
        // `Essential: yes` is not a relation: only what is listed and its dependency closure are installed.
        let resolver = Resolver(packages: [Self.package("app"), Self.package("base-files")], architecture: "amd64")
        #expect(try names(resolver.resolve(["app"])) == ["app=1.0"])
    }

    @Test func alternativesPreferAlreadyChosenThenFirstSatisfiable() throws {
        let packages = [
            Self.package("app", depends: "mawk | gawk"),
            Self.package("mawk"), Self.package("gawk"),
            Self.package("solo", depends: "missing | gawk (>= 9) | mawk"),
        ]
        let resolver = Resolver(packages: packages, architecture: "amd64")
        // Requests are chosen before any dependency is looked at, so a listed gawk satisfies `mawk | gawk`.
        #expect(try names(resolver.resolve(["app"])) == ["app=1.0", "mawk=1.0"])
        #expect(try names(resolver.resolve(["gawk", "app"])) == ["app=1.0", "gawk=1.0"])
        #expect(try names(resolver.resolve(["solo"])) == ["mawk=1.0", "solo=1.0"])
    }

    @Test func virtualPackagesAndVersionedProvides() throws {
        let resolver = Resolver(
            packages: [
                Self.package("mailer", depends: "mail-transport-agent"),
                Self.package("postfix", provides: "mail-transport-agent", conflicts: "mail-transport-agent"),
                Self.package("needs-new", depends: "libfoo-abi (>= 2)"),
                Self.package("needs-any", depends: "libfoo-abi"),
                Self.package("libfoo2", provides: "libfoo-abi (= 2.1)"),
                Self.package("libfoo-old", provides: "libfoo-abi"),
                Self.package("awk-user", depends: "mawk:any"),
                Self.package("mawk"),
                Self.package("foreign-user", depends: "mawk:arm64"),
            ], architecture: "amd64")
        // Providing and conflicting with the same virtual name is allowed (a package never conflicts with itself).
        #expect(try names(resolver.resolve(["mailer"])) == ["mailer=1.0", "postfix=1.0"])
        // A versioned dependency is only satisfied by a versioned Provides.
        #expect(try names(resolver.resolve(["needs-new"])) == ["libfoo2=1.0", "needs-new=1.0"])
        #expect(try names(resolver.resolve(["needs-any"])) == ["libfoo-old=1.0", "needs-any=1.0"])
        #expect(try names(resolver.resolve(["awk-user"])) == ["awk-user=1.0", "mawk=1.0"])
        #expect(throws: DebianError.self) { try resolver.resolve(["foreign-user"]) }
        // A virtual name asked for directly with several providers is ambiguous.
        #expect {
            try resolver.resolve(["libfoo-abi"])
        } throws: { error in
            "\(error)".contains("virtual package provided by libfoo-old, libfoo2")
        }
        #expect(try names(resolver.resolve(["mail-transport-agent"])) == ["postfix=1.0"])
    }

    @Test func errorsNameThePackage() throws {
        let resolver = Resolver(
            packages: [
                Self.package("app", depends: "libgone"),
                Self.package("old-user", depends: "libc (>= 3)"),
                Self.package("libc", "2.36"),
                Self.package("a", depends: "b"),
                Self.package("b", conflicts: "c (<< 2)"),
                Self.package("c", "1.5"),
                Self.package("d", breaks: "libc"),
            ], architecture: "amd64")
        #expect(throws: DebianError.missingPackage(name: "nosuch", requiredBy: nil)) {
            try resolver.resolve(["nosuch"])
        }
        #expect(throws: DebianError.missingPackage(name: "libgone", requiredBy: "app 1.0")) {
            try resolver.resolve(["app"])
        }
        #expect {
            try resolver.resolve(["old-user"])
        } throws: { error in
            "\(error)".contains("old-user 1.0 needs 'libc (>= 3)'") && "\(error)".contains("libc has only 2.36")
        }
        #expect(throws: DebianError.conflict(package: "b 1.0", relation: "c (<< 2)", with: "c 1.5")) {
            try resolver.resolve(["a", "c"])
        }
        #expect(throws: DebianError.conflict(package: "d 1.0", relation: "libc", with: "libc 2.36")) {
            try resolver.resolve(["d", "libc"])
        }
    }

    @Test func deterministicWhateverTheIndexOrder() throws {
        var packages = [
            Self.package("app", depends: "x | y, z"), Self.package("x"), Self.package("y"), Self.package("z", "1"),
            Self.package("z", "2"),
        ]
        let first = try Resolver(packages: packages, architecture: "amd64").resolve(["app"])
        packages.reverse()
        #expect(try Resolver(packages: packages, architecture: "amd64").resolve(["app"]) == first)
        #expect(names(first) == ["app=1.0", "x=1.0", "z=2"])
    }
}
