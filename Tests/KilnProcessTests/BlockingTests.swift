import Dispatch
import Foundation
import Synchronization
import Testing

@testable import KilnProcess

@Suite struct BlockingTests {
    struct Refused: Error, Equatable {}

    final class Counter: Sendable {
        let value = Atomic(0)
    }

    /// As many blocking calls as the cooperative pool has threads (one per core), each waiting for a ticking
    /// async task to let it go: run on the pool they would hold every thread, the ticker could never run, and
    /// each wait would time out. Through `Blocking.run` the ticker ticks while they wait, and releases them.
    @Test func asyncTasksMakeProgressWhileBlockingCallsWait() async throws {
        let width = max(2, ProcessInfo.processInfo.activeProcessorCount)
        let released = DispatchSemaphore(value: 0)
        let entered = Counter()
        let calls = Task {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<width {
                    group.addTask {
                        try await Blocking.run {
                            entered.value.add(1, ordering: .sequentiallyConsistent)
                            return released.wait(timeout: .now() + 120) == .success
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
        }
        // Every call is inside its blocking wait before the ticker starts counting.
        while entered.value.load(ordering: .sequentiallyConsistent) < width {
            try await Task.sleep(for: .milliseconds(5))
        }
        var ticks = 0
        while ticks < 20 {
            try await Task.sleep(for: .milliseconds(5))
            ticks += 1
        }
        for _ in 0..<width { released.signal() }
        let finished = try await calls.value
        #expect(finished == Array(repeating: true, count: width))
        #expect(ticks == 20)
    }

    @Test func returnsTheResultAndRethrowsTheError() async throws {
        let value = try await Blocking.run { 6 * 7 }
        #expect(value == 42)
        await #expect(throws: Refused()) { try await Blocking.run { throw Refused() } }
    }

    @Test func runsOnAThreadOfItsOwn() async throws {
        let name = try await Blocking.run("kiln-test") { Self.threadName() }
        #expect(name == "kiln-test")
        // The kernel keeps 15 bytes: a longer name is cut, not refused (pthread_setname_np fails on 16 or more).
        let long = try await Blocking.run("kiln-environment") { Self.threadName() }
        #expect(long == "kiln-environmen")
    }

    /// The calling thread's name as the kernel has it (what `top -H` and debuggers show).
    static func threadName() -> String {
        let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
        return comm.trimmingCharacters(in: .newlines)
    }
}
