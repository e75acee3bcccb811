import Dispatch

/// Bounded concurrency, one place: work over a collection with at most `limit` items in flight.
public enum Bounded {
    /// Runs `body` for every item, at most `limit` at once, as child tasks; the first error cancels the rest
    /// and is rethrown.
    public static func forEach<Item: Sendable>(
        _ items: some Sequence<Item>, limit: Int, _ body: @escaping @Sendable (Item) async throws -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var pending = items.makeIterator()
            var running = 0
            while running < max(1, limit), let item = pending.next() {
                group.addTask { try await body(item) }
                running += 1
            }
            while try await group.next() != nil {
                if let item = pending.next() { group.addTask { try await body(item) } }
            }
        }
    }

    /// Runs `body(job)` for every job `0..<after.count`, at most `limit` at once, each once every job its
    /// `after` entry lists has finished (those must be earlier jobs). Of the jobs that are ready, the lowest
    /// number starts first, so the caller's order is the priority. A job waiting for others holds no slot: work
    /// that does not depend on a long job runs beside it instead of queueing behind it. The first error cancels
    /// the rest and is rethrown.
    public static func forEach(
        after: [[Int]], limit: Int, _ body: @escaping @Sendable (Int) async throws -> Void
    ) async throws {
        var waitingFor = [Int](repeating: 0, count: after.count)
        var dependents = [[Int]](repeating: [], count: after.count)
        for (job, earlier) in after.enumerated() {
            for needed in Set(earlier) {
                precondition(needed < job, "job \(job) waits for \(needed), which is not an earlier job")
                waitingFor[job] += 1
                dependents[needed].append(job)
            }
        }
        // Ready jobs, highest number first, so the next to start is the last element.
        var ready = waitingFor.indices.filter { waitingFor[$0] == 0 }.reversed().map { $0 }
        try await withThrowingTaskGroup(of: Int.self) { group in
            var running = 0
            func start() {
                while running < max(1, limit), let job = ready.popLast() {
                    group.addTask {
                        try await body(job)
                        return job
                    }
                    running += 1
                }
            }
            start()
            while let finished = try await group.next() {
                running -= 1
                for job in dependents[finished] {
                    waitingFor[job] -= 1
                    guard waitingFor[job] == 0 else { continue }
                    let at = ready.firstIndex { $0 < job } ?? ready.endIndex
                    ready.insert(job, at: at)
                }
                start()
            }
        }
    }

    /// Runs `body(index)` for every index below `count` on up to `limit` threads, for synchronous work (hashing
    /// files) from synchronous code; returns when all are done.
    public static func forEach(count: Int, limit: Int, _ body: @Sendable (Int) -> Void) {
        let lanes = max(1, min(limit, count))
        guard lanes > 1 else { return (0..<count).forEach(body) }
        DispatchQueue.concurrentPerform(iterations: lanes) { lane in
            for index in stride(from: lane, to: count, by: lanes) { body(index) }
        }
    }
}
