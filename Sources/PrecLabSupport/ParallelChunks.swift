import Dispatch

/// Deterministic data parallelism over index ranges.
///
/// Work is cut into chunks whose boundaries depend only on the element count and the
/// chunk size, never on how many threads run them, and per-chunk results are combined
/// in chunk order. A reduction therefore gives the same bits on one core or many.
public enum ParallelChunks {
    /// Number of worker threads to use. Defaults to the active processor count and can
    /// be lowered with the `PRECLAB_THREADS` environment variable (tests use it to
    /// prove results do not depend on thread count).
    public static var threadCount: Int {
        if let text = getenvString("PRECLAB_THREADS"), let value = Int(text), value >= 1 {
            return value
        }
        return max(1, activeProcessorCount())
    }

    /// The fixed chunk ranges covering `0..<count`.
    public static func ranges(count: Int, chunkSize: Int) -> [Range<Int>] {
        precondition(chunkSize > 0, "chunkSize must be positive")
        guard count > 0 else { return [] }
        var result: [Range<Int>] = []
        result.reserveCapacity((count + chunkSize - 1) / chunkSize)
        var start = 0
        while start < count {
            let end = min(count, start + chunkSize)
            result.append(start..<end)
            start = end
        }
        return result
    }

    /// Calls `body` once per chunk of `0..<count`, on up to `threads` threads.
    /// Inputs of a single chunk run inline on the calling thread.
    public static func forEach(
        count: Int, chunkSize: Int, threads: Int = ParallelChunks.threadCount,
        _ body: @Sendable (Range<Int>) -> Void
    ) {
        let chunks = ranges(count: count, chunkSize: chunkSize)
        if chunks.count <= 1 || threads <= 1 {
            for chunk in chunks { body(chunk) }
            return
        }
        let workers = min(threads, chunks.count)
        let next = AtomicCounter()
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let index = next.fetchAdd()
                if index >= chunks.count { break }
                body(chunks[index])
            }
        }
    }

    /// Maps every chunk to a value and returns the values in chunk order, so that a
    /// caller folding them sequentially gets a thread-count-independent result.
    public static func map<T: Sendable>(
        count: Int, chunkSize: Int, threads: Int = ParallelChunks.threadCount,
        _ body: @Sendable (Range<Int>) -> T
    ) -> [T] {
        let chunks = ranges(count: count, chunkSize: chunkSize)
        let results = ResultSlots<T>(count: chunks.count)
        forEach(count: chunks.count, chunkSize: 1, threads: threads) { indices in
            for index in indices { results.set(index, body(chunks[index])) }
        }
        return results.values()
    }
}

/// One slot per chunk, each written by exactly one worker.
private final class ResultSlots<T>: @unchecked Sendable {
    private var slots: [T?]
    private let lock = Lock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: T) { lock.withLock { slots[index] = value } }
    func values() -> [T] { lock.withLock { slots.map { $0! } } }
}
