import Foundation
import KilnHTTP
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

@testable import KilnRegistry

/// Pushes through a proxy that resets connections and answers 500 and 429 at random (every request, the
/// first connection check included), in rounds of 10 pushes of a 20 MB image to fresh repositories, with
/// fixed seeds so a failure reproduces. Every push must complete with the right digest, with Kiln's default
/// retry budget: only the back-off delays are scaled down (0.02 s first, 0.5 s at most, instead of 0.5 s and 8 s)
/// so a round takes seconds, not minutes.
///
/// Every request of an upload (start, each chunk, the status check before a resume, the final PUT) gets the
/// policy's attempts of its own, and a broken upload resumes or opens a new session without starting the blob
/// over, so what decides a round is the chance that one request fails every attempt: 0.6^n with 60% of all
/// requests failing (the harsh round: 40% resets, 10% 500, 10% 429). A push here sends 27 to 36 requests that
/// succeed (blob checks, uploads, the manifest, the tag, the SBOM and its fallback tag). With 5 attempts per
/// request (the default before) 0.6^5 ≈ 8% of requests fail, and most pushes; Kiln now tries a request up to 20
/// times within its 150 s deadline (0.6^20 ≈ 4e-5 per request, about 0.1% per push). With the real back-off
/// (0.5 s doubling, at most 8 s, with jitter) the 19 waits of 20 attempts add up to 64 to 128 s: within the
/// deadline. The test also shows that the policy is the only one (no request is retried by anything else).
@Suite(.serialized) struct FaultRoundsTests {
    func image(_ tmp: TemporaryDirectory) async throws -> (OCILayout, Descriptor) {
        try Shell.run(["sh", "-c", "head -c 20000000 /dev/urandom > '\(tmp.path)/big'"])
        try tmp.write(
            "f.yaml",
            """
            name: faulty
            version: "1"
            compression: none
            layers:
              - name: big
                add: [{src: big, to: /big}]
            """)
        let layout = try await FixtureStore.build([tmp.path + "/f.yaml"], into: tmp.path + "/images")
        return (layout, try layout.resolve("faulty:1"))
    }

    /// Pushes 10 times; returns how many completed, a summary of the faults, and how many failed pushes left a
    /// tag behind (read from the registry directly, not through the proxy).
    func round(_ rates: FaultProxy.Rates, _ layout: OCILayout, _ image: Descriptor) async throws -> (
        Int, String, Int
    ) {
        try await withRegistry { registry in
            try await withFaultProxy(upstream: registry.port, delay: 0, rates: rates) { proxy in
                var succeeded = 0
                var failed: [String] = []
                for n in 1...10 {
                    // Kiln's default attempts and deadline, and short back-off so the test is quick; one job keeps the
                    // seeded sequence of faults the same on every run.
                    var options = HTTPOptions(baseDelay: 0.02, environment: [:])
                    options.retry.maxDelay = 0.5
                    #expect(options.retry.attempts == RetryPolicy.defaultAttempts)
                    #expect(options.retry.deadline == RetryPolicy.defaultDeadline)
                    let transport = try HTTPTransport(options: options)
                    let client = RegistryClient(
                        registry: proxy.address, transport: transport,
                        options: RegistryOptions(monolithicLimit: 4 << 20, chunkSize: 4 << 20, jobs: 1))
                    do {
                        let pushed = try await Pusher(layout: layout, client: client).push([
                            .init(repository: "round/faulty-\(n)", descriptor: image, tags: ["1"])
                        ])
                        let served = try await client.manifestDescriptor("round/faulty-\(n)", "1")
                        if pushed.first?.digest == image.digest, served?.digest == image.digest { succeeded += 1 }
                    } catch {
                        print("push \(n) failed: \(error)")
                        // Worded for what happened (dropped connections, rate limiting), never as a wrong address.
                        #expect(!"\(error)".contains("Check the address"), "\(error)")
                        failed.append("round/faulty-\(n)")
                    }
                    await transport.shutdown()
                }
                let direct = try HTTPTransport()
                let client = RegistryClient(registry: registry.address, transport: direct, options: RegistryOptions())
                var dangling = 0
                for repository in failed where try await client.manifestDescriptor(repository, "1") != nil {
                    dangling += 1
                }
                await direct.shutdown()
                let faults = proxy.injected
                return (
                    succeeded, "\(faults.resets) resets, \(faults.errors500) × 500, \(faults.errors429) × 429", dangling
                )
            }
        }
    }

    @Test func tenOfTenPushesAt20and5and5Percent() async throws {
        try await withTemporaryDirectory("kiln-rounds") { tmp in
            let (layout, image) = try await image(tmp)
            let (succeeded, faults, dangling) = try await round(
                .init(reset: 0.20, error500: 0.05, error429: 0.05, seed: 20), layout, image)
            print("20/5/5 round: \(succeeded)/10 pushes, \(faults)")
            #expect(succeeded == 10, "\(faults)")
            #expect(dangling == 0)
        }
    }

    @Test func tenOfTenPushesAt40and10and10Percent() async throws {
        try await withTemporaryDirectory("kiln-rounds") { tmp in
            let (layout, image) = try await image(tmp)
            let (succeeded, faults, dangling) = try await round(
                .init(reset: 0.40, error500: 0.10, error429: 0.10, seed: 40), layout, image)
            print("40/10/10 round: \(succeeded)/10 pushes, \(faults)")
            #expect(succeeded == 10, "\(faults)")
            #expect(dangling == 0, "a failed push left a tag")
        }
    }
}
