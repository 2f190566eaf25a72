// Benchmarks for `make bench`. Every area adds a file with one entry in `suites`;
// `preclab-bench NAME...` runs only the named suites. Speed is reported as ratios
// measured in the same run (against memcpy of the same bytes, or numpy doing the same
// work), never as absolute pass/fail thresholds.
#if canImport(Glibc)
import Glibc
#endif

let suites: [(name: String, run: () -> Void)] = [
    ("formats", runFormatsBenchmarks),
    ("files", FilesBenchmarks.run),
    ("synth", runSynthBenchmark),
    ("spectral", runSpectralBenchmarks),
    ("replay", runReplayBenchmarks),
    ("train", runTrainingBenchmarks),
]

let requested = Array(CommandLine.arguments.dropFirst())
// A child process of the replay memory benchmark (peak RSS must be its own).
if requested.first == "replay-memory-child" {
    replayMemoryChild(Array(requested.dropFirst()))
    exit(0)
}
let unknown = requested.filter { name in !suites.contains { $0.name == name } }
if !unknown.isEmpty {
    print("preclab-bench: unknown suite(s) \(unknown.joined(separator: ", ")); have: \(suites.map(\.name).joined(separator: " "))")
    exit(2)
}
for suite in suites where requested.isEmpty || requested.contains(suite.name) {
    print("== \(suite.name) ==")
    suite.run()
    print("")
}
