import KilnOCI
import Testing

@testable import KilnBuild

/// How a recipe's settings combine with its base's (docker's rules, plus `reset`).
@Suite struct AssemblyMergeTests {
    var base: ImageConfig.ExecutionConfig {
        var c = ImageConfig.ExecutionConfig()
        c.exposedPorts = ["7770/tcp": EmptyObject(), "7771/tcp": EmptyObject()]
        c.volumes = ["/home/komodo/.komodo": EmptyObject()]
        c.env = ["PATH=/usr/bin", "A=1"]
        c.entrypoint = ["/usr/local/bin/komodod"]
        c.cmd = ["-printtoconsole"]
        return c
    }

    @Test func portsAccumulateUnlessReset() {
        var overlay = ImageConfig.ExecutionConfig()
        overlay.exposedPorts = ["10195/tcp": EmptyObject()]
        #expect(
            ImageAssembly.merge(base: base, overlay: overlay).exposedPorts?.keys.sorted() == [
                "10195/tcp", "7770/tcp", "7771/tcp",
            ])
        let reset = ImageAssembly.merge(base: base, overlay: overlay, reset: ["ports"])
        #expect(reset.exposedPorts?.keys.sorted() == ["10195/tcp"])
        #expect(reset.volumes?.keys.sorted() == ["/home/komodo/.komodo"], "only what is named is reset")
    }

    @Test func envOverridesByNameAndCmdFollowsEntrypoint() {
        var overlay = ImageConfig.ExecutionConfig()
        overlay.env = ["A=2"]
        overlay.cmd = ["-ac_name=REVS"]
        let merged = ImageAssembly.merge(base: base, overlay: overlay)
        #expect(merged.env == ["PATH=/usr/bin", "A=2"])
        #expect(merged.entrypoint == ["/usr/local/bin/komodod"])
        #expect(merged.cmd == ["-ac_name=REVS"])
        overlay.entrypoint = ["/bin/other"]
        overlay.cmd = nil
        #expect(ImageAssembly.merge(base: base, overlay: overlay).cmd == nil, "a new entrypoint drops the base's cmd")
    }
}
