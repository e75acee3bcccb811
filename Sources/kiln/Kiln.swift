import ArgumentParser

@main
struct Kiln: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Build reproducible OCI images from declarative recipes, without a daemon.",
        subcommands: []
    )
}
