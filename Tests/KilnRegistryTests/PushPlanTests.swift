import Foundation
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnRegistry

/// Which tags a push sends, planned from the store's tags alone: no registry, no CLI.
struct PushPlanTests {
    let target = RegistryTarget(registry: "registry.example.com", namespace: "komodo")

    /// A stored tag of content `content` (the same content, the same digest).
    func tagged(_ reference: String, _ content: String, pulled: Bool = false) -> TaggedImage {
        var descriptor = Descriptor(mediaType: MediaType.imageIndex, bytes: Data(content.utf8))
        descriptor.annotations = [AnnotationKey.refName: reference]
        descriptor.platform = Platform(parsing: "linux/amd64")
        if pulled { descriptor.annotations?[OCIConversion.sourceDigestKey] = descriptor.digest.description }
        return TaggedImage(reference: reference, descriptor: descriptor)
    }

    /// Three builds of `app` (1.9.0 is the newest and carries `stable`), one of `base`, and a pulled image.
    var store: [TaggedImage] {
        [
            tagged("app:1.10.0", "b"), tagged("app:1.9.0", "c"), tagged("app:stable", "c"),
            tagged("app:2.0.0", "a"), tagged("app:edge", "a"), tagged("app:1.9.2-rc1", "d"),
            tagged("base:1.0.0", "e"), tagged("base:latest", "e"),
            tagged("registry.example.com/upstream/debian:12", "f", pulled: true),
        ]
    }

    func sent(_ plan: PushPlan) -> [String] {
        plan.images.flatMap { image in image.tags.map { "\(image.repository):\($0)" } }
    }

    @Test func nameTagSendsThatTagOnly() throws {
        let plan = try PushPlan(["app:1.10.0"], allTags: false, stored: store, to: target)
        #expect(sent(plan) == ["komodo/app:1.10.0"])
    }

    @Test func aNameSendsItsHighestVersionWithTheNonVersionTagsOfThatBuild() throws {
        // 2.0.0 > 1.10.0 > 1.9.2-rc1 > 1.9.0 as versions (as text, 1.9.0 sorts after 1.10.0).
        let plan = try PushPlan(["app"], allTags: false, stored: store, to: target)
        #expect(sent(plan) == ["komodo/app:2.0.0", "komodo/app:edge"])
        #expect(plan.images.count == 1)
    }

    @Test func nothingNamedSendsEachImagesCurrentVersionAndNeverAPulledImage() throws {
        let plan = try PushPlan([], allTags: false, stored: store, to: target)
        #expect(sent(plan) == ["komodo/app:2.0.0", "komodo/app:edge", "komodo/base:1.0.0", "komodo/base:latest"])
        let all = try PushPlan([], allTags: true, stored: store, to: target)
        #expect(!all.images.contains { $0.name.contains("/") })
        #expect(all.images.map(\.name) == ["app", "app", "app", "app", "base"])
    }

    @Test func allTagsGroupsTagsByContent() throws {
        let plan = try PushPlan(["app"], allTags: true, stored: store, to: target)
        let byDigest = Dictionary(uniqueKeysWithValues: plan.images.map { ($0.descriptor.digest, $0.tags) })
        #expect(byDigest[Digest.sha256(Data("a".utf8))] == ["2.0.0", "edge"])
        #expect(byDigest[Digest.sha256(Data("c".utf8))] == ["1.9.0", "stable"])
        #expect(plan.images.count == 4)
        // Sorted by name, then digest: the order pushes and reports follow.
        #expect(plan.images.map(\.descriptor.digest) == plan.images.map(\.descriptor.digest).sorted())
    }

    @Test func theRegistryGetsNoStoreAnnotationsNorPlatform() throws {
        let plan = try PushPlan(["app:stable"], allTags: false, stored: store, to: target)
        let descriptor = try #require(plan.images.first?.descriptor)
        #expect(descriptor.annotations == nil && descriptor.platform == nil)
        #expect(descriptor.digest == Digest.sha256(Data("c".utf8)) && descriptor.mediaType == MediaType.imageIndex)
    }

    @Test func aNamedPulledImageIsRefusedPointingAtCopy() throws {
        #expect(throws: PushPlanError.pulled(reference: "registry.example.com/upstream/debian:12")) {
            try PushPlan(["registry.example.com/upstream/debian:12"], allTags: false, stored: store, to: target)
        }
        let message = "\(PushPlanError.pulled(reference: "x"))"
        #expect(message.contains("kiln copy"))
    }

    @Test func anImageWithoutAVersionTagNeedsATagOrAllTags() throws {
        let store = [tagged("tool:latest", "t"), tagged("tool:edge", "u")]
        #expect(throws: PushPlanError.noVersion(name: "tool", tags: ["edge", "latest"])) {
            try PushPlan(["tool"], allTags: false, stored: store, to: target)
        }
        #expect(try PushPlan(["tool"], allTags: true, stored: store, to: target).images.count == 2)
    }

    @Test func anUnknownNameListsWhatTheStoreHas() throws {
        #expect(throws: PushPlanError.unknown(reference: "nope", known: ["base:1.0.0"])) {
            try PushPlan(["nope"], allTags: false, stored: [tagged("base:1.0.0", "e")], to: target)
        }
    }

    @Test func repositoryNamesAreCheckedBeforeAnyRequest() throws {
        let error = #expect(throws: RegistryError.self) {
            try PushPlan(["Upper:1"], allTags: false, stored: [tagged("Upper:1", "x")], to: target)
        }
        #expect(error?.repository == "komodo/Upper")
    }

    @Test func aReleaseSendsEveryOwnImageTaggedTheVersion() throws {
        let store = self.store + [tagged("registry.example.com/upstream/debian:1.0.0", "g", pulled: true)]
        let plan = try PushPlan(release: "1.0.0", stored: store, to: target)
        #expect(sent(plan) == ["komodo/base:1.0.0"])
        #expect(try PushPlan(release: "9.9.9", stored: store, to: target).images.isEmpty)
    }

    @Test func versionsCompareNumberByNumberAndPreReleasesFirst() {
        #expect(PushPlan.versionLess("1.9.2", "1.10.0"))
        #expect(PushPlan.versionLess("1.9.2-rc1", "1.9.2"))
        #expect(PushPlan.versionLess("v1.2", "v1.2.1"))
        #expect(!PushPlan.versionLess("2.0.0", "2.0.0"))
        #expect(PushPlan.isVersion("v2") && PushPlan.isVersion("0.9.0"))
        #expect(!PushPlan.isVersion("stable") && !PushPlan.isVersion("latest") && !PushPlan.isVersion("vnext"))
    }
}
