import Foundation
import Synchronization
import Testing

@testable import KilnOCI

/// `Bounded.forEach(after:)`: jobs wait for the jobs they depend on and nothing else, at most `limit` run at
/// once, the lowest-numbered ready job starts first, and the first error ends the run.
@Suite struct BoundedTests {
    final class Trace: Sendable {
        let state = Mutex((events: [String](), running: 0, most: 0))
        func enter(_ job: Int) {
            state.withLock {
                $0.events.append("start \(job)")
                $0.running += 1
                $0.most = max($0.most, $0.running)
            }
        }
        func leave(_ job: Int) {
            state.withLock {
                $0.events.append("end \(job)")
                $0.running -= 1
            }
        }
        var events: [String] { state.withLock { $0.events } }
        var most: Int { state.withLock { $0.most } }
    }

    @Test func aLongJobDoesNotHoldBackWorkThatDoesNotDependOnIt() async throws {
        // 0 is long; 1..4 are short, 5 and 6 depend on 1 and 2, 7 depends on 0. With two slots, everything but
        // 7 finishes while 0 runs.
        let after: [[Int]] = [[], [], [], [], [], [1], [2, 1], [0]]
        let trace = Trace()
        try await Bounded.forEach(after: after, limit: 2) { job in
            trace.enter(job)
            try await Task.sleep(for: .milliseconds(job == 0 ? 400 : 10))
            trace.leave(job)
        }
        let events = trace.events
        let at = { (event: String) in events.firstIndex(of: event) ?? -1 }
        #expect(events.prefix(2).sorted() == ["start 0", "start 1"], "the lowest ready jobs start first: \(events)")
        for job in 1...6 { #expect(at("end \(job)") < at("end 0"), "job \(job) ran beside the long job: \(events)") }
        #expect(at("start 5") > at("end 1") && at("start 6") > at("end 2") && at("start 7") > at("end 0"))
        #expect(trace.most == 2)
        #expect(events.count == 16)
    }

    @Test func theFirstErrorEndsTheRunAndDependentsNeverStart() async throws {
        struct Failed: Error {}
        let trace = Trace()
        await #expect(throws: Failed.self) {
            try await Bounded.forEach(after: [[], [0], [1]], limit: 4) { job in
                trace.enter(job)
                if job == 1 { throw Failed() }
                trace.leave(job)
            }
        }
        #expect(!trace.events.contains("start 2"))
    }
}
