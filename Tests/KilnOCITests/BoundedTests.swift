import Foundation
import Synchronization
import Testing

@testable import KilnOCI

/// `Bounded.forEach(after:)`: jobs wait for the jobs they depend on and nothing else, at most `limit` run at
/// once, and the first error ends the run.
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
        // 0 is long: it ends only once 1...6 have ended (or after 20 s). 5 and 6 depend on 1 and 2, 7 on 0. With
        // two slots, everything but 7 must run in the other slot while 0 holds its own.
        let after: [[Int]] = [[], [], [], [], [], [1], [2, 1], [0]]
        let trace = Trace()
        let released = Mutex(false)
        try await Bounded.forEach(after: after, limit: 2) { job in
            trace.enter(job)
            if job == 0 {
                for _ in 0..<2000 {
                    if (1...6).allSatisfy({ trace.events.contains("end \($0)") }) {
                        released.withLock { $0 = true }
                        break
                    }
                    try await Task.sleep(for: .milliseconds(10))
                }
            }
            trace.leave(job)
        }
        let events = trace.events
        let at = { (event: String) in events.firstIndex(of: event) ?? -1 }
        #expect(released.withLock { $0 }, "jobs 1...6 ran beside the long job: \(events)")
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
