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
