import CLapack

/// Runs LAPACK/BLAS work with OpenBLAS on one thread, then restores its thread count.
///
/// Why: the factorisations here are small, and OpenBLAS worker threads keep spinning
/// (sched_yield) after a threaded call, taking the cores the AdamW loop runs on. One
/// thread also makes the base and signal bits independent of OPENBLAS_NUM_THREADS.
enum SingleThreadedBLAS {
    static func run<T>(_ body: () throws -> T) rethrows -> T {
        let previous = openblas_get_num_threads()
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(previous) }
        return try body()
    }
}
