import Foundation
import PrecLabFiles
import PrecLabFormats
import PrecLabReplay
import PrecLabSupport

/// `preclab-bench replay`: element-steps per second of the replay engine on a stream of
/// 128 steps (a short fine-tuning run; the paper's ran 300), for the
/// master policy alone and all five policies, on 1 and 2 threads, against a plain
/// numpy + ml_dtypes replay of the same stream in the same run. Targets: master
/// >= 1.5 G element-steps/s, all five >= 0.4 G/s, >= 10x numpy.
func runReplayBenchmarks() {
    let rows = 1024, columns = 512, tensorCount = 2, steps = 128
    let elements = rows * columns * tensorCount
    let path = NSTemporaryDirectory() + "preclab-bench-replay-\(getpid()).bin"
    defer { unlink(path) }
    do {
        try writeBenchmarkStream(path: path, rows: rows, columns: columns, tensors: tensorCount, steps: steps)
    } catch {
        print("replay: cannot write the benchmark stream: \(error)")
        return
    }
    let elementSteps = Double(elements * steps)
    print("stream: \(tensorCount) tensors of \(rows)x\(columns), \(steps) steps, "
          + "\(elements * steps * 4 / 1_000_000) MB of updates")

    // The step pass alone (engine applying mapped records, no CRC, no final
    // analysis): what the element-step targets are about.
    var stepRates: [String: Double] = [:]
    print("step pass (engine on mapped records):")
    for (label, policies) in [("master", [ReplayPolicy.master]), ("all five", ReplayPolicy.allCases)] {
        for threads in [1, 2] {
            let configuration = ReplayConfiguration(format: .bf16, policies: policies, threads: threads)
            let seconds = bestOf(3) { _ = try? timeStepPass(path: path, configuration: configuration) }
            let rate = elementSteps / seconds
            stepRates["\(label)/\(threads)"] = rate
            print("  \(pad(label, 9)) threads \(threads)  \(fixed(rate / 1e9, 3)) G element-steps/s")
        }
    }
    // End to end: `preclab replay` as a user runs it (framing walk, CRC, steps, final
    // analysis with sorting for the low-magnitude overlaps).
    var rates: [String: Double] = [:]
    print("end to end (StreamReplay.run, 2 threads):")
    for (label, policies) in [("master", [ReplayPolicy.master]), ("all five", ReplayPolicy.allCases)] {
        for verify in [false, true] {
            let configuration = ReplayConfiguration(format: .bf16, policies: policies, threads: 2)
            let options = StreamReplayOptions(verifyCRC: verify)
            let seconds = bestOf(3) {
                _ = try? StreamReplay.run(path: path, configuration: configuration, options: options)
            }
            let rate = elementSteps / seconds
            rates["\(label)/\(verify)"] = rate
            print("  \(pad(label, 9)) crc \(verify ? "on " : "off")  \(fixed(rate / 1e9, 3)) G element-steps/s")
        }
    }
    let master = stepRates["master/2"] ?? 0, all = stepRates["all five/2"] ?? 0
    print("target master >= 1.5 G/s (step pass, 2 threads): \(master >= 1.5e9 ? "met" : "NOT met")")
    print("target all five >= 0.4 G/s (step pass, 2 threads): \(all >= 0.4e9 ? "met" : "NOT met")")

    guard let numpy = numpyReference(path: path) else { return }
    let numpyMaster = elementSteps / numpy.master, numpyAll = elementSteps / numpy.all
    print("numpy + ml_dtypes: master \(fixed(numpyMaster / 1e9, 3)) G/s, all \(fixed(numpyAll / 1e9, 3)) G/s")
    // numpy's replay walks the stream without CRC and computes only the final
    // master count, so compare it with the end-to-end run without CRC.
    let masterRatio = (rates["master/false"] ?? 0) / numpyMaster
    let allRatio = (rates["all five/false"] ?? 0) / numpyAll
    print("speed-up over numpy (end to end, CRC off): master \(fixed(masterRatio, 1))x, "
          + "all five \(fixed(allRatio, 1))x; target >= 10x (all five): \(allRatio >= 10 ? "met" : "NOT met")")
    print("  (numpy's master replay is one vectorised fp32 add per step, memory-bound like ours,")
    print("   so 10x is only meaningful for the rounding policies)")
}

/// Applies every STEP of a stream with a fresh engine; the replay's inner loop.
private func timeStepPass(path: String, configuration: ReplayConfiguration) throws {
    let reader = try UpdateStreamReader(path: path, options: .init(verifyCRC: false))
    let tensors = reader.header.tensors.map { ReplayTensor(name: $0.name, shape: $0.shape) }
    var engine: ReplayEngine?
    try reader.forEachRecord { record in
        switch record.kind {
        case .base: engine = try ReplayEngine(tensors: tensors, base: record.values, configuration: configuration)
        case .step: try engine?.apply(step: record.step, delta: record.values, recordCurvePoint: false)
        case .final: break
        }
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text + String(repeating: " ", count: max(0, width - text.count))
}

func fixed(_ value: Double, _ decimals: Int) -> String {
    String(format: "%.\(decimals)f", value)
}

/// Best wall-clock time of `repeats` runs.
func bestOf(_ repeats: Int, _ body: () -> Void) -> Double {
    var best = Double.infinity
    for _ in 0..<repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    return best
}

private func writeBenchmarkStream(path: String, rows: Int, columns: Int, tensors: Int, steps: Int) throws {
    let tensorList = (0..<tensors).map {
        UpdateStreamTensor(name: "layers.\($0).weight", shape: [rows, columns], dtype: "BF16")
    }
    let writer = try UpdateStreamWriter(path: path, tensors: tensorList, force: true)
    let count = rows * columns * tensors
    var state: UInt64 = 0x1234_5678_9ABC_DEF1
    func uniform() -> Float {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Float(Int64(state >> 40) - (1 << 23)) / Float(1 << 23)
    }
    var weights = (0..<count).map { _ in uniform() * 0.04 }
    try weights.withUnsafeBufferPointer { try writer.writeBase(values: $0) }
    var update = [Float](repeating: 0, count: count)
    for step in 1...steps {
        for index in 0..<count { update[index] = uniform() * 2e-5 }
        for index in 0..<count { weights[index] += update[index] }
        try update.withUnsafeBufferPointer { try writer.writeStep(step: UInt64(step), learningRate: 1e-6, values: $0) }
    }
    try weights.withUnsafeBufferPointer { try writer.writeFinal(values: $0) }
    try writer.close()
}

private func numpyReference(path: String) -> (master: Double, all: Double)? {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("tools/bench/replay_numpy.py").path
    guard let output = runProcess(benchPython, [script, path]),
          let data = output.data(using: .utf8),
          let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        print("numpy reference: skipped (\(benchPython) with numpy and ml_dtypes not available; `make pyenv` creates it)")
        return nil
    }
    if let reason = json["skipped"] as? String {
        print("numpy reference: skipped (\(reason))")
        return nil
    }
    guard let seconds = json["seconds"] as? [String: Double], let master = seconds["master"],
          let all = seconds["all"] else { return nil }
    return (master, all)
}

/// The Python the numpy references run in: `PRECLAB_PYTHON`, else the private
/// environment `make pyenv` creates (never the machine's own Python).
let benchPython = getenvString("PRECLAB_PYTHON") ?? ".build/pyenv/bin/python"

/// Runs a program and returns the last line of its standard output, or nil when it
/// fails. Spawned without Foundation's run loop (ChildProcess), which can hang here.
func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) -> String? {
    guard let result = try? ChildProcess.run(executable, arguments, overrides: environment, timeout: 3600),
          result.status == 0 else { return nil }
    return result.stdoutText.split(separator: "\n").last.map(String.init)
}
