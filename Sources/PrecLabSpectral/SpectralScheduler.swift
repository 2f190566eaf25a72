import PrecLabSupport

/// Runs one job per tensor so that both cores are busy and results do not depend on
/// the thread count.
///
/// Small matrices (`BLASThreads.isSmall`) run several at a time, each with a
/// single-threaded OpenBLAS; large ones run one at a time with the fixed
/// `BLASThreads.largeMatrixThreads`. Which setting a tensor gets depends on its shape
/// only, so its numbers are the same with `PRECLAB_THREADS=1` or on a bigger machine.
public enum SpectralScheduler {
    /// Calls `job(index)` once for every shape: all small ones first (in parallel on up
    /// to `threads` workers), then the large ones in index order. Jobs must write their
    /// results to per-index storage; the order they finish in is unspecified.
    public static func run(
        shapes: [(rows: Int, columns: Int)], threads: Int = ParallelChunks.threadCount,
        _ job: @Sendable (Int) -> Void
    ) {
        let small = shapes.indices.filter { BLASThreads.isSmall(rows: shapes[$0].rows, columns: shapes[$0].columns) }
        let smallSet = Set(small)
        let large = shapes.indices.filter { !smallSet.contains($0) }
        let previous = BLASThreads.current
        defer { BLASThreads.set(previous) }
        if !small.isEmpty {
            BLASThreads.set(1)
            ParallelChunks.forEach(count: small.count, chunkSize: 1, threads: threads) { range in
                for position in range { job(small[position]) }
            }
        }
        if !large.isEmpty {
            BLASThreads.set(BLASThreads.largeMatrixThreads)
            for index in large { job(index) }
        }
    }
}
