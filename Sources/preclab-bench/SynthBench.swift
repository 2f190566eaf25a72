#if canImport(Glibc)
import Glibc
#endif
import PrecLabSupport
import PrecLabSynth

/// A sink that only touches the first value of each payload, so the benchmark times the
/// simulation and not the disk.
private struct DiscardingSink: UpdateStreamSink {
    var checksum: Float = 0
    mutating func begin(tensors: [StreamTensorInfo], metadata: [(key: String, value: String)]) throws {}
    mutating func writeBase(step: UInt64, tensors: [UnsafeBufferPointer<Float>]) throws {}
    mutating func writeStep(_ step: UInt64, learningRate: Double, deltas: [UnsafeBufferPointer<Float>]) throws {
        checksum += deltas[0][0]
    }
    mutating func writeFinal(step: UInt64, tensors: [UnsafeBufferPointer<Float>]) throws {}
}

private func secondsNow() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

/// `preclab-bench synth`: simulated AdamW steps (noise generation included) per
/// element-step, against memcpy of the same delta bytes, on 1 thread and all threads.
func runSynthBenchmark() {
    let shapes = [(256, 256), (256, 256), (256, 512)]
    let steps = 60
    let elements = shapes.reduce(0) { $0 + $1.0 * $1.1 }
    let tensors = shapes.enumerated().map { index, shape in
        SynthTensorSource.generated(name: "t\(index)", rows: shape.0, columns: shape.1)
    }
    // memcpy of one delta payload per step.
    let source = [Float](repeating: 1, count: elements)
    var target = [Float](repeating: 0, count: elements)
    let copyStart = secondsNow()
    for _ in 0 ..< steps {
        source.withUnsafeBytes { from in
            target.withUnsafeMutableBytes { to in _ = memcpy(to.baseAddress!, from.baseAddress!, from.count) }
        }
    }
    let copySeconds = secondsNow() - copyStart
    let work = Double(elements * steps)
    print("memcpy of \(steps) payloads of \(elements) fp32: \(String(format: "%.2f", copySeconds * 1e9 / work)) ns/element")
    // Set-up (base factors, signal) is timed by a one-step run and taken out, so the
    // per-element figure is the cost of a step: noise, AdamW, master update.
    func seconds(_ profile: SynthProfile, steps: Int, threads: Int) throws -> Double {
        let configuration = SynthConfiguration(steps: steps, learningRate: 1e-6, profile: profile,
                                               seed: 1, threads: threads)
        let generator = try SyntheticStreamGenerator(configuration: configuration, tensors: tensors)
        var sink = DiscardingSink()
        let start = secondsNow()
        try generator.generate(into: &sink)
        let elapsed = secondsNow() - start
        if sink.checksum.isNaN { print("(NaN checksum)") }
        return elapsed
    }
    for profile in [SynthProfile.rl, .sft, .noise] {
        for threads in Set([1, ParallelChunks.threadCount]).sorted() {
            do {
                let setup = try seconds(profile, steps: 1, threads: threads)
                let total = try seconds(profile, steps: steps + 1, threads: threads)
                let perStep = max(0, total - setup)
                print("synth \(profile.rawValue), \(threads) thread(s): set-up \(String(format: "%.3f", setup)) s, then \(String(format: "%.2f", perStep * 1e9 / work)) ns/element-step = \(String(format: "%.1f", perStep / copySeconds))x memcpy of the deltas")
            } catch {
                print("synth \(profile.rawValue): failed: \(error)")
            }
        }
    }
}
