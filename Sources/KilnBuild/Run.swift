import Foundation
import KilnStore

/// What a run of the pipeline made: the prepared inputs (their pins), the images, and the lock as recorded.
public struct PipelineOutcome: Sendable {
    public var prepared: PreparedInputs
    public var images: [BuiltImage]
    /// The lock as written or left (nil when there is none to keep, or the run records nothing).
    public var lock: LockRecord?
    /// Whether the lock file changed in this run (pins and image digests together).
    public var lockChanged: Bool
}

/// How a run treats the lock and the tags: what tells `kiln build`, `kiln lock` and `kiln verify` apart.
public struct PipelineRun: Sendable {
    /// Tag the images (`kiln lock` builds them only to record their digests).
    public var tag: Bool
    /// Record what the build learnt in the lock (`kiln verify` rebuilds and writes nothing).
    public var record: Bool
    /// Record the pins (inputs, package sets) before anything is compiled or built, so they hold even when an
    /// image cannot be built here (`kiln lock`).
    public var pinsFirst: Bool
    /// Run every build step twice and fail on the first output that differs.
    public var checkReproducible: Bool

    public init(tag: Bool = true, record: Bool = true, pinsFirst: Bool = false, checkReproducible: Bool = false) {
        self.tag = tag
        self.record = record
        self.pinsFirst = pinsFirst
        self.checkReproducible = checkReproducible
    }

    /// `kiln build`.
    public static let build = PipelineRun()
    /// `kiln lock`: pins first, images built untagged so their digests can be recorded.
    public static let lock = PipelineRun(tag: false, pinsFirst: true)
    /// `kiln verify`: a rebuild that records nothing.
    public static let verify = PipelineRun(record: false)
}

extension Pipeline {
    /// The one composition of the stages, for every command that builds: prepare → compile → build → record.
    /// `plan` is what `Pipeline.plan` returned (and `kiln build --dry-run --json` prints).
    public static func run(
        _ plan: BuildPlan, store: String, as run: PipelineRun = .build,
        events: @escaping @Sendable (BuildEvent) -> Void = { _ in }
    ) async throws -> PipelineOutcome {
        var prepared = try await fetchInputs(
            plan, store: store, reuseOutputs: !run.checkReproducible, events: events)
        let pins = run.pinsFirst && run.record ? try record(prepared) : nil
        do {
            try await prepareSources(&prepared)
            let outputs = try await compile(
                prepared, store: store, checkReproducible: run.checkReproducible, events: events)
            let layout = try OCILayout(root: store)
            var outcome = PipelineOutcome(
                prepared: prepared, images: [], lock: pins, lockChanged: pins?.changed == true)
            if run.record {
                let (images, lock) = try await buildAndRecord(
                    prepared, outputs: outputs, into: layout, tag: run.tag, events: events)
                outcome.images = images
                outcome.lock = lock ?? pins
                outcome.lockChanged = outcome.lockChanged || lock?.changed == true
            } else {
                outcome.images = try await build(prepared, outputs: outputs, into: layout, tag: run.tag, events: events)
            }
            return outcome
        } catch {
            if let pins, pins.changed {
                events(
                    .status(
                        "updated \(pins.path): \(prepared.inputs.count) inputs pinned; no image digest recorded (the build failed)"
                    ))
            }
            throw error
        }
    }
}
