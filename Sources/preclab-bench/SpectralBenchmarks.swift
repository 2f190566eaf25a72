// Benchmarks of the spectral module, as ratios measured in the same run:
// - SVD through LAPACK against numpy.linalg.svd on the same float64 matrices;
// - randomized top-64 principal angles against the full SVD at 4096x4096;
// - the bf16 sparsity scan over mapped files against memcpy of the same bytes;
// - many small tensors through SpectralScheduler with 1 worker against all cores.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PrecLabSpectral
import PrecLabSupport

func runSpectralBenchmarks() {
    let env = ProcessInfo.processInfo.environment
    print("OpenBLAS (Swift side): \(BLASThreads.libraryDescription); \(BLASThreads.current) threads by default; OPENBLAS_CORETYPE=\(env["OPENBLAS_CORETYPE"] ?? "unset")")
    let sizes = (env["PRECLAB_BENCH_SVD_SIZES"] ?? "512,1024,2048").split(separator: ",").compactMap { Int($0) }
    benchmarkSVDAgainstNumpy(sizes: sizes)
    benchmarkRandomizedAngles(size: Int(env["PRECLAB_BENCH_RSVD_SIZE"] ?? "") ?? 4096)
    benchmarkSparsityScan()
    benchmarkManySmallTensors()
}

/// Seconds of the fastest of `repeats` runs.
private func bestTime(_ repeats: Int, _ body: () throws -> Void) rethrows -> Double {
    var best = Double.infinity
    for _ in 0..<repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    return best
}

/// Runs `script` in the bench's Python and returns stdout, or nil when it fails.
private func python(_ script: String, arguments: [String] = [], environment: [String: String] = [:]) -> String? {
    guard let result = try? ChildProcess.run(benchPython, ["-c", script] + arguments, overrides: environment, timeout: 3600),
          result.status == 0 else { return nil }
    return result.stdoutText
}

private func benchmarkSVDAgainstNumpy(sizes: [Int]) {
    print("-- SVD, float64, Swift (LAPACKE dgesdd, \(BLASThreads.largeMatrixThreads) OpenBLAS threads) vs numpy.linalg.svd on the same matrix")
    let info = python("""
    import numpy as np, json
    try:
        from threadpoolctl import threadpool_info
        t = [(i.get('internal_api'), i.get('version'), i.get('num_threads'), i.get('architecture')) for i in threadpool_info()]
    except Exception:
        t = 'threadpoolctl not installed'
    c = np.show_config(mode='dicts')['Build Dependencies']['lapack']
    print('numpy', np.__version__, c.get('name'), c.get('version'), 'threads:', t)
    """)
    print("   \(info?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "numpy not available: ratios skipped")")
    print("   (each side timed with 2 BLAS threads and with 1; OpenBLAS threads spin while waiting, so a loaded machine hurts 2-thread times)")
    for n in sizes {
        let matrix = GaussianSampler(seed: UInt64(n)).matrix(rows: n, columns: n)
        let path = NSTemporaryDirectory() + "preclab-bench-svd-\(n).f64"
        // Row-major bytes for numpy (np.fromfile(...).reshape(n, n)).
        let bytes = matrix.rowMajorElements.withUnsafeBytes { Data($0) }
        try? bytes.write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let repeats = n >= 2048 ? 2 : 3
        for threads: Int32 in [BLASThreads.largeMatrixThreads, 1] {
            BLASThreads.set(threads)
            let swiftValues = bestTime(repeats) { _ = try? LinearAlgebra.singularValues(of: matrix) }
            let swiftThin = bestTime(repeats) { _ = try? LinearAlgebra.thinSVD(of: matrix) }
            let numpy = python("""
            import sys, time, numpy as np
            n = int(sys.argv[2]); r = int(sys.argv[3])
            a = np.fromfile(sys.argv[1], dtype=np.float64).reshape(n, n)
            def best(f):
                b = 1e9
                for _ in range(r):
                    t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
                return b
            print(best(lambda: np.linalg.svd(a, compute_uv=False)), best(lambda: np.linalg.svd(a, full_matrices=False)))
            """, arguments: [path, String(n), String(repeats)], environment: ["OPENBLAS_NUM_THREADS": String(threads)])
            let fields = numpy?.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Double($0) } ?? []
            var line = "   \(n)x\(n), \(threads) thread(s): values only \(format(swiftValues)) s, thin U,S,V \(format(swiftThin)) s"
            if fields.count == 2 {
                line += "; numpy \(format(fields[0])) s / \(format(fields[1])) s; ratio Swift/numpy \(format(swiftValues / fields[0])) / \(format(swiftThin / fields[1]))"
            }
            print(line)
        }
    }
    BLASThreads.set(BLASThreads.largeMatrixThreads)
}

private func benchmarkRandomizedAngles(size n: Int) {
    print("-- top-64 principal angles of a \(n)x\(n) pair: randomized (q = 5, p = 10) vs full SVD")
    BLASThreads.set(BLASThreads.largeMatrixThreads)
    let base = GaussianSampler(seed: 1).matrix(rows: n, columns: n)
    var tuned = base
    let noise = GaussianSampler(seed: 2).matrix(rows: n, columns: n)
    for index in 0..<tuned.storage.count { tuned.storage[index] += 1e-3 * noise.storage[index] }
    var maxAngle = 0.0
    let randomized = bestTime(1) {
        let a = try! LinearAlgebra.randomizedSVD(of: base, k: 64)
        let b = try! LinearAlgebra.randomizedSVD(of: tuned, k: 64)
        maxAngle = try! PrincipalAngles.between(a.u, b.u).last!
    }
    let full = bestTime(1) { _ = try? LinearAlgebra.thinSVD(of: base) }
    print("   randomized, both matrices + angles: \(format(randomized)) s (max angle \(format(maxAngle * 180 / .pi))°); full thin SVD of one matrix: \(format(full)) s; speed-up \(format(full / randomized))x (vs two full SVDs: \(format(2 * full / randomized))x)")
}

private func benchmarkSparsityScan() {
    let megabytes = Int(ProcessInfo.processInfo.environment["PRECLAB_BENCH_SCAN_MB"] ?? "") ?? 512
    let bytes = megabytes << 20
    print("-- bf16 sparsity scan of two mapped \(megabytes) MiB files (countDifferingCodes, \(ParallelChunks.threadCount) threads)")
    let directory = NSTemporaryDirectory()
    let paths = [directory + "preclab-bench-a.bin", directory + "preclab-bench-b.bin"]
    var codes = [UInt16](repeating: 0, count: bytes / 2)
    for index in codes.indices { codes[index] = UInt16(truncatingIfNeeded: index &* 2654435761) }
    codes.withUnsafeBytes { try? Data($0).write(to: URL(fileURLWithPath: paths[0])) }
    for index in stride(from: 0, to: codes.count, by: 3) { codes[index] ^= 1 }
    codes.withUnsafeBytes { try? Data($0).write(to: URL(fileURLWithPath: paths[1])) }
    codes = []
    defer { for path in paths { unlink(path) } }
    let maps = paths.map { path -> UnsafeRawBufferPointer in
        let fd = open(path, O_RDONLY)
        let pointer = mmap(nil, bytes, PROT_READ, MAP_PRIVATE, fd, 0)!
        close(fd)
        return UnsafeRawBufferPointer(start: pointer, count: bytes)
    }
    defer { for map in maps { munmap(UnsafeMutableRawPointer(mutating: map.baseAddress!), bytes) } }
    var differing = 0
    _ = CodeComparison.countDifferingCodes(maps[0], maps[1], bytesPerCode: 2)   // fault pages in
    let scan = bestTime(3) { differing = CodeComparison.countDifferingCodes(maps[0], maps[1], bytesPerCode: 2) }
    let target = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    defer { target.deallocate() }
    let copy = bestTime(3) {
        memcpy(target, maps[0].baseAddress!, bytes)
        memcpy(target, maps[1].baseAddress!, bytes)
    }
    let maskTime = bestTime(1) { _ = CodeComparison.differingCodesMask(maps[0], maps[1], bytesPerCode: 2) }
    // compare's default: +0 and -0 count as equal (the extra "both zero" test per word).
    let zeroAware = bestTime(3) { _ = CodeComparison.countDifferingCodes(maps[0], maps[1], bytesPerCode: 2, zeroSignBit: 0x8000) }
    let perCheckpoint = Double(bytes) / scan / 1e9
    print("   differing \(differing) of \(bytes / 2) codes (expected \((bytes / 2 + 2) / 3))")
    print("   scan: \(format(perCheckpoint)) GB/s per checkpoint (\(format(2 * perCheckpoint)) GB/s of input read); memcpy of the same bytes: \(format(2 * Double(bytes) / copy / 1e9)) GB/s; scan/memcpy time ratio \(format(scan / copy))")
    print("   update mask build: \(format(Double(bytes) / maskTime / 1e9)) GB/s per checkpoint")
    print("   scan with +-0 equal (compare's default): scan/memcpy time ratio \(format(zeroAware / copy))")
}

private func benchmarkManySmallTensors() {
    let count = 48
    print("-- \(count) tensor pairs of 256x256 through SpectralScheduler (k = rank = 16): 1 worker vs \(ParallelChunks.threadCount)")
    let pairs = (0..<count).map { index -> (Matrix, Matrix) in
        let base = GaussianSampler(seed: UInt64(100 + index)).matrix(rows: 256, columns: 256)
        var tuned = base
        tuned.storage[index] += 1
        return (base, tuned)
    }
    let shapes = Array(repeating: (rows: 256, columns: 256), count: count)
    let options = SpectralOptions(k: 16, rank: 16)
    /// Wall seconds and CPU seconds (user + system) of one scheduler run.
    func run(_ threads: Int) -> (wall: Double, cpu: Double) {
        let before = cpuSeconds()
        let wall = bestTime(1) {
            SpectralScheduler.run(shapes: shapes, threads: threads) { index in
                _ = try? MatrixComparison(base: pairs[index].0, tuned: pairs[index].1, options: options)
            }
        }
        return (wall, cpuSeconds() - before)
    }
    let one = run(1)
    let all = run(ParallelChunks.threadCount)
    print("   1 worker \(format(one.wall)) s (\(format(one.cpu / one.wall)) cores busy), \(ParallelChunks.threadCount) workers \(format(all.wall)) s (\(format(all.cpu / all.wall)) cores busy): speed-up \(format(one.wall / all.wall))x")
    print("   (cores busy = CPU seconds / wall seconds of this process; other load on the machine lowers it)")
}

/// User + system CPU seconds of this process so far.
private func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

private func format(_ value: Double) -> String {
    if value == 0 || !value.isFinite { return "\(value)" }
    if abs(value) >= 100 { return String(format: "%.0f", value) }
    if abs(value) >= 1 { return String(format: "%.2f", value) }
    return String(format: "%.3g", value)
}
