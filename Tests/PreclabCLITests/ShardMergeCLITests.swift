import Foundation
import PrecLabFiles
import PrecLabSupport
import PrecLabTestFixtures
import XCTest

/// `--shard I/N` and `preclab merge`: the merge of 1, 2 and 5 shards is the JSON of the
/// unsharded run, byte for byte (and its CSV), and every kind of mismatch is refused.
final class ShardMergeCLITests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws { directory = try CLIRunner.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func bytes(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path(name))) }

    private func run(_ arguments: [String], status: Int32 = 0, file: StaticString = #filePath,
                     line: UInt = #line) throws -> CLIResult {
        let result = try CLIRunner.run(arguments)
        XCTAssertEqual(result.status, status, "\(arguments.joined(separator: " ")): \(result.stderr)",
                       file: file, line: line)
        return result
    }

    /// Runs `arguments` unsharded and as N = 1, 2, 5 shards, merges each set and checks
    /// the merged JSON (and CSV when `csv`, the SVG plots when `plots`) against the
    /// unsharded files.
    private func checkMergesMatch(_ command: [String], tag: String, csv: Bool, plots: Bool = false,
                                  file: StaticString = #filePath, line: UInt = #line) throws {
        var outputs = ["--json", path("\(tag)-full.json")]
        if csv { outputs += ["--csv", path("\(tag)-full.csv")] }
        if plots { outputs += ["--plots", path("\(tag)-full-plots")] }
        _ = try run(command + outputs, file: file, line: line)
        let full = try bytes("\(tag)-full.json")
        XCTAssertNil(try Fixtures.readJSON(path("\(tag)-full.json"))["shard"], "an unsharded run has no shard block")
        for count in [1, 2, 5] {
            var shards: [String] = []
            for index in 1...count {
                let shard = path("\(tag)-\(index)of\(count).json")
                _ = try run(command + ["--shard", "\(index)/\(count)", "--json", shard], file: file, line: line)
                shards.append(shard)
            }
            // Shards in any order merge the same.
            let merged = path("\(tag)-merged\(count).json")
            var merge = ["merge", merged] + shards.reversed() + ["--quiet"]
            if csv { merge += ["--csv", path("\(tag)-merged\(count).csv")] }
            if plots { merge += ["--plots", path("\(tag)-merged\(count)-plots")] }
            _ = try run(merge, file: file, line: line)
            XCTAssertEqual(try bytes("\(tag)-merged\(count).json"), full,
                           "\(tag): merge of \(count) shard(s) differs from the unsharded JSON", file: file, line: line)
            if csv {
                XCTAssertEqual(try bytes("\(tag)-merged\(count).csv"), try bytes("\(tag)-full.csv"),
                               "\(tag): CSV of the merge of \(count) shard(s)", file: file, line: line)
            }
            if plots {
                let names = try FileManager.default.contentsOfDirectory(atPath: path("\(tag)-full-plots")).sorted()
                XCTAssertFalse(names.isEmpty, file: file, line: line)
                XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: path("\(tag)-merged\(count)-plots"))
                    .sorted(), names, file: file, line: line)
                for name in names {
                    XCTAssertEqual(try bytes("\(tag)-merged\(count)-plots/\(name)"), try bytes("\(tag)-full-plots/\(name)"),
                                   "\(tag): plot \(name) of the merge of \(count) shard(s)", file: file, line: line)
                }
            }
        }
    }

    /// A six-matrix synthetic stream (3744 weights, 12 steps).
    private func writeStream() throws -> String {
        let stream = path("s.bin")
        _ = try run(["synth", "-o", stream, "--shape", "32x48,16x16,64x8,8x8,40x20,24x24", "--steps", "12",
                     "--lr", "1e-3", "--profile", "rl", "--quiet"])
        return stream
    }

    func testReplayMergesToTheUnshardedJSONAndCSV() throws {
        let stream = try writeStream()
        // Every policy (stochastic rounding keys by the tensor's place in the stream), the
        // null model (seeded per tensor) and the spectral picture.
        try checkMergesMatch(["replay", stream, "--null", "permute", "--spectral", "--k", "4", "--rank", "4",
                              "--every", "5", "--quiet"], tag: "replay", csv: true, plots: true)
        // --tensors composes: the shards partition the selected tensors.
        try checkMergesMatch(["replay", stream, "--tensors", "synth\\.(0|1|2|4|5)\\.", "--quiet"], tag: "subset", csv: false)
        let subset = try Fixtures.readJSON(path("subset-full.json"))
        XCTAssertEqual(subset["tensors"]?.arrayValue?.count, 5)
    }

    /// A stream whose deltas were taken as after - before misses FINL in two of its five
    /// tensors (by one ULP each: b at elements 1 and 2, e at element 0): each shard sees
    /// only its own mismatches, and the merge rebuilds the unsharded count, largest
    /// distance, first example (in stream order) and warning.
    func testFinalMismatchesMergeToTheUnshardedReport() throws {
        let stream = path("finl.bin")
        let writer = try UpdateStreamWriter(path: stream, tensors: [
            UpdateStreamTensor(name: "a", shape: [2, 2]), UpdateStreamTensor(name: "b", shape: [3, 2]),
            UpdateStreamTensor(name: "c", shape: [2]), UpdateStreamTensor(name: "d", shape: [2]),
            UpdateStreamTensor(name: "e", shape: [2]),
        ])
        // 0.3 -> -0.1 and 0.001 -> -0.002 miss by one ULP in fp32 (ReplayCLITests); the
        // other values subtract exactly.
        let before: [Float] = [0.5, 0.25, 0.75, 0.125, 0.5, 0.3, 0.001, 0.5, 0.25, 0.75, 0.5, 0.25, 0.75, 0.5, 0.3, 0.5]
        let after: [Float] = [0.75, 0.125, 0.5, 0.25, 0.25, -0.1, -0.002, 0.75, 0.5, 0.5, 0.25, 0.5, 0.5, 0.25, -0.1, 0.25]
        let delta = zip(after, before).map { $0 - $1 }
        try before.withUnsafeBufferPointer { try writer.writeBase(values: $0) }
        try delta.withUnsafeBufferPointer { try writer.writeStep(step: 1, learningRate: 1e-3, values: $0) }
        try after.withUnsafeBufferPointer { try writer.writeFinal(values: $0) }
        try writer.close()
        try checkMergesMatch(["replay", stream, "--quiet"], tag: "finl", csv: true)
        let full = try XCTUnwrap(try Fixtures.readJSON(path("finl-full.json"))["finl_mismatches"]?.objectValue)
        XCTAssertEqual(full["count"], 3)
        XCTAssertEqual(full["max_ulp_distance"], 1)
        XCTAssertEqual(full["first"]?.objectValue?["tensor"], "b")
        XCTAssertEqual(full["first"]?.objectValue?["index"], 1)
    }

    /// Three matrices, a vector (sparsity only), a tensor only in TUNED and one whose
    /// shape differs: every skip list is rebuilt in the unsharded order.
    private func writeCheckpoints() throws -> (base: String, tuned: String, runs: [String]) {
        var random = Fixtures.Random(state: 0x5EED)
        func values(_ count: Int) -> [Double] { (0..<count).map { _ in random.next() } }
        let shapes: [(String, [Int])] = [
            ("model.layers.0.self_attn.q_proj.weight", [24, 16]), ("model.layers.0.mlp.up_proj.weight", [32, 24]),
            ("model.layers.1.self_attn.v_proj.weight", [16, 16]), ("model.norm.weight", [40]),
            ("model.layers.1.mlp.down_proj.weight", [12, 30]),
        ]
        let base = shapes.map { FixtureTensor(name: $0.0, dtype: .f32, shape: $0.1, values: values($0.1.reduce(1, *))) }
        func perturbed(_ tensor: FixtureTensor, scale: Double) -> FixtureTensor {
            FixtureTensor(name: tensor.name, dtype: .f32, shape: tensor.shape,
                          values: tensor.values.map { $0 + scale * random.next() })
        }
        var tuned = base.map { perturbed($0, scale: 0.05) }
        tuned[4] = FixtureTensor(name: base[4].name, dtype: .f32, shape: [30, 12], values: base[4].values)
        tuned.append(FixtureTensor(name: "lm_head.weight", dtype: .f32, shape: [8, 8], values: values(64)))
        let paths = (base: path("base.safetensors"), tuned: path("tuned.safetensors"),
                     runs: [path("run1.safetensors"), path("run2.safetensors"), path("run3.safetensors")])
        try Fixtures.write(paths.base, base)
        try Fixtures.write(paths.tuned, tuned)
        for (index, run) in paths.runs.enumerated() {
            // Run 3 lacks the down projection: a consistency skip.
            try Fixtures.write(run, base.map { perturbed($0, scale: 0.01) }.filter { index < 2 || $0.shape != [12, 30] })
        }
        return paths
    }

    func testCompareMergesToTheUnshardedJSONAndCSV() throws {
        let files = try writeCheckpoints()
        try checkMergesMatch(["compare", files.base, files.tuned, "--k", "3", "--rank", "3", "--quiet"],
                             tag: "compare", csv: true, plots: true)
        let full = try Fixtures.readJSON(path("compare-full.json"))
        XCTAssertEqual(full["skipped"]?.arrayValue?.count, 3, "shape mismatch, missing in BASE, sparsity only")
    }

    func testConsistencyMergesToTheUnshardedJSON() throws {
        let files = try writeCheckpoints()
        try checkMergesMatch(["consistency", "--base", files.base] + files.runs + ["--quiet"],
                             tag: "consistency", csv: false, plots: true)
        // The heat map of one tensor, drawn from the merged consensus counts.
        let tensor = "model.layers.0.mlp.up_proj.weight"
        _ = try run(["consistency", "--base", files.base] + files.runs
                    + ["--quiet", "--plots", path("heat-full"), "--heatmap", tensor])
        _ = try run(["merge", path("heat.json"), path("consistency-1of2.json"), path("consistency-2of2.json"),
                     "--quiet", "--plots", path("heat-merged"), "--heatmap", tensor])
        XCTAssertEqual(try bytes("heat-merged/consensus_heatmap.svg"), try bytes("heat-full/consensus_heatmap.svg"))
        let full = try Fixtures.readJSON(path("consistency-full.json"))
        XCTAssertEqual(full["skipped"]?.arrayValue?.count, 1)
    }

    func testMergeRefusesEveryMismatchWithExitOne() throws {
        let stream = try writeStream()
        func shard(_ name: String, _ spec: String, _ extra: [String] = []) throws -> String {
            _ = try run(["replay", stream, "--policy", "fp32,master", "--quiet", "--shard", spec,
                         "--json", path(name)] + extra)
            return path(name)
        }
        let a1 = try shard("a1.json", "1/2"), a2 = try shard("a2.json", "2/2")
        let seeded = try shard("seeded.json", "2/2", ["--seed", "7"])
        let other3 = try shard("b1.json", "1/3")
        func refused(_ inputs: [String], _ reason: String, line: UInt = #line) throws {
            let result = try run(["merge", path("out.json")] + inputs, status: 1, line: line)
            XCTAssertTrue(result.stderr.contains(reason), "expected '\(reason)' in: \(result.stderr)", line: line)
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("out.json")), "no partial output", line: line)
        }
        try refused([a1, seeded], "'configuration' is")  // different options
        try refused([a1, a2, a1], "shard 1/2 is given twice")  // overlap: a shard twice
        try refused([a1, other3], "shards of different partitions overlap")  // overlap: another N
        try refused([a1], "shard(s) 2/2 missing")  // missing shard
        // A shard of another stream (different run) and of another command.
        let otherStream = path("t.bin")
        _ = try run(["synth", "-o", otherStream, "--shape", "8x8,4x4", "--steps", "3", "--lr", "1e-3",
                     "--profile", "noise", "--quiet"])
        _ = try run(["replay", otherStream, "--policy", "fp32,master", "--quiet", "--shard", "2/2",
                     "--json", path("other.json")])
        try refused([a1, path("other.json")], "shards of different runs or options")
        let files = try writeCheckpoints()
        _ = try run(["compare", files.base, files.tuned, "--quiet", "--shard", "2/2", "--json", path("c2.json")])
        try refused([a1, path("c2.json")], "is a replay shard but")
        // An unsharded JSON, and a shard whose run was edited.
        _ = try run(["replay", stream, "--policy", "fp32,master", "--quiet", "--json", path("plain.json")])
        try refused([a1, path("plain.json")], "has no 'shard' block")
        let edited = try String(contentsOfFile: a2, encoding: .utf8)
            .replacingOccurrences(of: "/s.bin\"", with: "/S.bin\"")
        XCTAssertNotEqual(edited, try String(contentsOfFile: a2, encoding: .utf8))
        try edited.write(toFile: path("edited.json"), atomically: true, encoding: .utf8)
        try refused([a1, path("edited.json")], "does not match its 'run'")
        // The complete set still merges.
        _ = try run(["merge", path("out.json"), a2, a1, "--quiet"])
    }

    func testShardUsageErrors() throws {
        let stream = try writeStream()
        let noJSON = try run(["replay", stream, "--quiet", "--shard", "1/2"], status: 2)
        XCTAssertTrue(noJSON.stderr.contains("needs --json"), noJSON.stderr)
        let outOfRange = try run(["replay", stream, "--quiet", "--shard", "3/2", "--json", path("x.json")], status: 2)
        XCTAssertTrue(outOfRange.stderr.contains("--shard"), outOfRange.stderr)
        let tooMany = try run(["replay", stream, "--quiet", "--shard", "7/7", "--json", path("x.json")], status: 2)
        XCTAssertTrue(tooMany.stderr.contains("holds no tensor"), tooMany.stderr)
        let merge = try run(["merge", path("only.json")], status: 2)
        XCTAssertTrue(merge.stderr.contains("IN.json"), merge.stderr)
    }
}
