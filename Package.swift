// swift-tools-version:6.0
import PackageDescription

// Module dependencies run one way, top to bottom (see README "Architecture"):
//   kiln → KilnRelease → KilnBuild → {KilnRecipe, KilnLayer, KilnRegistry, KilnDebian} → KilnStore → KilnOCI
// KilnHTTP and KilnLayer sit above KilnStore too: downloads and unpacking write through its durability seam.
// KilnProcess (starting programs) sits at the bottom beside KilnOCI and depends on nothing.
// KilnSign (keys, cosign signatures, attestations) sits under KilnBuild, above KilnRegistry; it knows no recipes.
let package = Package(
    name: "Kiln",
    // macOS 15 for Synchronization's Mutex (Linux has it with Swift 6 itself).
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kiln", targets: ["kiln"])
    ],
    // Exact versions, so a fresh clone builds the same code (Package.resolved is not checked in). The packages
    // these depend on in turn (swift-crypto, swift-collections, …) are resolved by their own ranges.
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client", exact: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", exact: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
    ],
    targets: [
        // System libraries: module maps only, no code.
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CDeflate", providers: [.apt(["libdeflate-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),

        // The vocabulary: digests, descriptors, manifests, configs, references, deterministic JSON.
        .target(name: "KilnOCI", dependencies: ["CCrypto"]),
        // Starting programs (gpgv, git, bubblewrap): posix_spawn and waitpid, one place.
        .target(name: "KilnProcess"),
        // The OCI image layout on disk.
        .target(name: "KilnStore", dependencies: ["KilnOCI", .product(name: "Logging", package: "swift-log")]),
        // Deterministic tar writing and archive reading; compression; hashing streams.
        .target(name: "KilnLayer", dependencies: ["KilnOCI", "KilnStore", "CArchive", "CZlib", "CDeflate", "CZstd"]),
        // The recipe language: parse, validate, expand, diagnostics.
        .target(name: "KilnRecipe", dependencies: ["KilnOCI", .product(name: "Yams", package: "Yams")]),
        // Komodo's rules for a matrix of assetchains (komodod's port derivation), through the recipe language's
        // matrix seam: the language itself stays generic.
        .target(name: "KilnKomodo", dependencies: ["KilnOCI", "KilnRecipe"]),
        // HTTP transport shared by the registry client and input downloads.
        .target(
            name: "KilnHTTP",
            dependencies: [
                "KilnOCI",
                "KilnStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Distribution-spec client: auth, push, pull.
        .target(
            name: "KilnRegistry",
            dependencies: [
                "KilnOCI", "KilnStore", "KilnLayer", "KilnHTTP", "KilnProcess",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Hermetic build steps: a bubblewrap sandbox, environment roots, git-pinned source trees.
        .target(
            name: "KilnSandbox",
            dependencies: [
                "KilnOCI", "KilnStore", "KilnLayer", "KilnProcess", "CCrypto",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Debian package sets: resolve, verify, unpack.
        .target(
            name: "KilnDebian",
            dependencies: [
                "KilnOCI", "KilnStore", "KilnLayer", "KilnHTTP", "KilnProcess",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Planning, fetching, layer cache, assembling images, tagging.
        .target(
            name: "KilnBuild",
            dependencies: [
                "KilnOCI", "KilnStore", "KilnLayer", "KilnRecipe", "KilnRegistry", "KilnDebian", "KilnHTTP",
                "KilnProcess", "KilnSandbox", "KilnSign", .product(name: "Logging", package: "swift-log"),
            ]),
        // Keys, cosign signatures, DSSE attestations and their verification (knows registries, not recipes).
        .target(
            name: "KilnSign",
            dependencies: [
                "KilnOCI", "KilnStore", "KilnRegistry", "CCrypto", .product(name: "Yams", package: "Yams"),
            ]),
        // Releases: export archives, release documents, rollback, diff, deployment refs, verify.
        .target(
            name: "KilnRelease",
            dependencies: [
                "KilnOCI", "KilnStore", "KilnLayer", "KilnRecipe", "KilnKomodo", "KilnRegistry", "KilnBuild",
                "KilnHTTP", "KilnProcess", "KilnSign",
            ]),
        .executableTarget(
            name: "kiln",
            dependencies: [
                "KilnRelease", "KilnBuild", "KilnRegistry", "KilnDebian", "KilnHTTP", "KilnLayer", "KilnStore",
                "KilnOCI", "KilnRecipe", "KilnKomodo", "KilnSign",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // Real servers and tools for tests: docker-registry, a file server, podman, umoci, skopeo.
        .target(
            name: "KilnTestSupport",
            dependencies: ["KilnOCI", "KilnProcess", .product(name: "Logging", package: "swift-log")],
            path: "Tests/KilnTestSupport"),

        .testTarget(name: "KilnOCITests", dependencies: ["KilnOCI"]),
        .testTarget(name: "KilnProcessTests", dependencies: ["KilnProcess"]),
        .testTarget(
            name: "KilnStoreTests",
            dependencies: ["KilnStore", "KilnTestSupport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "KilnLayerTests", dependencies: ["KilnLayer", "KilnTestSupport"]),
        .testTarget(name: "KilnRecipeTests", dependencies: ["KilnRecipe", "KilnKomodo", "KilnOCI", "KilnTestSupport"]),
        .testTarget(name: "KilnKomodoTests", dependencies: ["KilnKomodo", "KilnRecipe"]),
        .testTarget(
            name: "KilnHTTPTests",
            dependencies: ["KilnHTTP", "KilnTestSupport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "KilnRegistryTests",
            dependencies: [
                "KilnRegistry", "KilnStore", "KilnHTTP", "KilnOCI", "KilnTestSupport",
                // Fixture stores are built through the library stages.
                "KilnBuild", "KilnRecipe",
            ]),
        .testTarget(
            name: "KilnSignTests",
            dependencies: [
                "KilnSign", "KilnRegistry", "KilnHTTP", "KilnStore", "KilnOCI", "KilnTestSupport",
                .product(name: "Yams", package: "Yams"),
            ]),
        .testTarget(
            name: "KilnDebianTests",
            dependencies: ["KilnDebian", "KilnHTTP", "KilnOCI", "KilnLayer", "KilnStore", "KilnTestSupport"]),
        .testTarget(
            name: "KilnSandboxTests",
            dependencies: ["KilnSandbox", "KilnDebian", "KilnLayer", "KilnOCI", "KilnStore", "KilnTestSupport"]),
        .testTarget(
            name: "KilnBuildTests",
            dependencies: [
                "KilnBuild", "KilnDebian", "KilnHTTP", "KilnOCI", "KilnRecipe", "KilnStore", "KilnLayer",
                "KilnTestSupport",
            ]),
        .testTarget(
            name: "KilnReleaseTests",
            dependencies: [
                "KilnRelease", "KilnBuild", "KilnLayer", "KilnStore", "KilnOCI", "KilnTestSupport",
                .product(name: "Yams", package: "Yams"),
            ]),
        .testTarget(
            name: "KilnIntegrationTests",
            dependencies: [
                "KilnBuild", "KilnDebian", "KilnRecipe", "KilnStore", "KilnOCI", "KilnRegistry", "KilnHTTP",
                "KilnTestSupport",
            ]),
    ]
)
