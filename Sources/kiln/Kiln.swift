import ArgumentParser
import KilnOCI

@main
struct Kiln: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Build reproducible OCI images from declarative recipes, without a daemon.",
        discussion: """
            Kiln compiles recipes (recipes/*.yaml) into OCI images in a local image layout (images/ by default), \
            with the same digests on any machine, any day. Typical flow:

              kiln build                      build every recipe in recipes/
              kiln images                     list what the store holds
              kiln inspect komodod:0.9.0      show manifest, config and layers
              kiln push --to REGISTRY/NS      publish, then pin the printed @sha256 digests
            """,
        version: "kiln \(KilnVersion.current) (encoding \(Encoding.version))",
        subcommands: [
            Build.self, Lock.self, Images.self, Inspect.self, Push.self, Pull.self, Login.self, Logout.self, GC.self,
            Release.self, Rollback.self, Releases.self, Diff.self, DeployRefsCommand.self, Verify.self, Export.self,
            Ls.self, DigestCommand.self, ManifestCommand.self, Copy.self, TagCommand.self, Catalog.self, Delete.self,
            BlobCommand.self, Untag.self, Fsck.self, KeyCommand.self, Sign.self,
            SBOMCommand.self, Promote.self,
        ]
    )

    static func main() async {
        await runMapped()
    }
}
