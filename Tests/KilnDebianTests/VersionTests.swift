import Foundation
import Testing

@testable import KilnDebian

@Suite struct VersionTests {
    /// Each version sorts strictly before the next; every pair was checked with `dpkg --compare-versions`.
    @Test func knownOrderings() {
        let ascending = [
            "~~", "~~a", "~", "0", "0.1~rc1", "0.1", "0.1-1", "0.1-1+b1", "0.1a", "0.1.1", "0.9", "0.10", "1.0~beta",
            "1.0", "1.0-0.1", "1.0-1~bpo1", "1.0-1", "1.0-2", "1.0-10", "1.0a-1", "1.0+dfsg-1", "1.2.3-4", "2.36-9",
            "2.36-9+deb12u4", "2.36-9+deb12u10", "10", "1:0.1", "1:1.0", "2:0~0",
        ]
        for (a, b) in zip(ascending, ascending.dropFirst()) {
            #expect(DebianVersion(a) < DebianVersion(b), "\(a) < \(b)")
            #expect(!(DebianVersion(b) < DebianVersion(a)), "not \(b) < \(a)")
        }
    }

    @Test func equalSpellings() {
        #expect(DebianVersion("1.0") == DebianVersion("0:1.0"))
        #expect(DebianVersion("1.0") == DebianVersion("1.0-0"))
        #expect(DebianVersion("1.002") == DebianVersion("1.2"))
        #expect(DebianVersion("1.0") != DebianVersion("1.0-1"))
        #expect(DebianVersion("1:2.0-3").epoch == 1)
        #expect(DebianVersion("1:2.0-3-4").upstream == "2.0-3")
        #expect(DebianVersion("1:2.0-3-4").revision == "4")
    }

    @Test func constraints() {
        let v = DebianVersion("2.36-9")
        func c(_ op: VersionConstraint.Operator, _ version: String) -> Bool {
            VersionConstraint(op: op, version: DebianVersion(version)).admits(v)
        }
        #expect(c(.laterOrEqual, "2.36") && !c(.laterOrEqual, "2.37"))
        #expect(c(.later, "2.36-8") && !c(.later, "2.36-9"))
        #expect(c(.earlier, "2.36-10") && !c(.earlier, "2.36-9"))
        #expect(c(.earlierOrEqual, "2.36-9") && !c(.earlierOrEqual, "2.36-8"))
        #expect(c(.equal, "0:2.36-9") && !c(.equal, "2.36"))
    }

    @Test func relationFields() {
        let groups = Relation.parseField("libc6 (>= 2.36), libgcc-s1 | libgcc1 (<< 1:4), awk:any, foo:amd64 (= 1.0)")
        #expect(groups.count == 4)
        #expect(
            groups[0] == [
                Relation(name: "libc6", architecture: nil, constraint: .init(op: .laterOrEqual, version: .init("2.36")))
            ])
        #expect(groups[1].map(\.name) == ["libgcc-s1", "libgcc1"])
        #expect(groups[1][1].constraint == VersionConstraint(op: .earlier, version: DebianVersion("1:4")))
        #expect(groups[2][0].architecture == "any")
        #expect(groups[3][0].architecture == "amd64" && groups[3][0].constraint?.op == .equal)
        // Obsolete `<` and `>` mean `<=` and `>=`.
        #expect(Relation.parseField("x (< 2)")[0][0].constraint?.op == .earlierOrEqual)
        #expect(Relation.parseField("x (> 2)")[0][0].constraint?.op == .laterOrEqual)
        #expect(Relation.parseField(nil).isEmpty)
    }
}
