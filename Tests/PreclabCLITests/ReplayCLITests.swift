import Foundation
import PrecLabTestSupport
import XCTest
import PrecLabFiles
import PrecLabSupport

/// `preclab replay` end to end through the built binary.
final class ReplayCLITests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = try CLIRunner.temporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private let tensors = [
        UpdateStreamTensor(name: "model.layers.0.q_proj.weight", shape: [16, 8], dtype: "BF16"),
        UpdateStreamTensor(name: "model.layers.0.norm.weight", shape: [8], dtype: "BF16"),
    ]

    /// Writes a stream: BASE, STEP at `steps`, FINL (optionally corrupted).
    @discardableResult
    private func writeStream(_ name: String, steps: [UInt64] = Array(1...10), base: Bool = true,
                             final: Bool = true, corruptFinal: Bool = false) throws -> (String, [Float]) {
        let file = path(name)
        let writer = try UpdateStreamWriter(path: file, tensors: tensors, metadata: [("test", "replay")])
        let count = 136
        var weights = (0..<count).map { Float($0 % 17) * 0.01 - 0.08 }
        let initial = weights
        if base { try weights.withUnsafeBufferPointer { try writer.writeBase(values: $0) } }
        for step in steps {
            let update = (0..<count).map { Float((($0 + Int(step)) % 7) - 3) * 1e-4 }
            for index in 0..<count { weights[index] += update[index] }
            try update.withUnsafeBufferPointer { try writer.writeStep(step: step, learningRate: 1e-4, values: $0) }
        }
        if final {
            var recorded = weights
            if corruptFinal { recorded[20] = recorded[20].nextUp }
            try recorded.withUnsafeBufferPointer { try writer.writeFinal(values: $0) }
        }
        try writer.close()
        return (file, initial)
    }

    func testReplayPrintsTablesAndWritesEveryOutput() throws {
        let (stream, _) = try writeStream("run.bin")
        let result = try CLIRunner.run(["replay", stream, "--dtype", "bf16", "--null", "permute",
                                        "--json", path("out.json"), "--csv", path("out.csv"),
                                        "--plots", path("plots")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("model.layers.0.q_proj.weight"), result.stdout)
        XCTAssertTrue(result.stdout.contains("stochastic"))
        XCTAssertTrue(result.stdout.contains("matches FINL bit for bit"))
        for line in result.stdout.split(separator: "\n") {
            XCTAssertLessThanOrEqual(line.count, 100, "table line wider than 100 columns: \(line)")
        }

        let json = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path("out.json")))))
        let root = try XCTUnwrap(json.objectValue)
        XCTAssertEqual(root["dtype"], "bf16")
        XCTAssertEqual(root["rounding"], "nearest-even")
        XCTAssertEqual(root["steps"], 10)
        XCTAssertEqual(root["policies"], ["fp32", "master", "pure", "stochastic", "kahan"])
        let first = try XCTUnwrap(root["tensors"]?.arrayValue?.first?.objectValue)
        XCTAssertEqual(first["shape"], [16, 8])
        XCTAssertEqual(first["params"], 128)
        let master = try XCTUnwrap(first["policies"]?.objectValue?["master"]?.objectValue)
        for key in ["visible_changed", "sparsity", "hidden", "relative_error"] {
            XCTAssertNotNil(master[key], key)
        }
        let total = try XCTUnwrap(root["total"]?.objectValue)
        XCTAssertEqual(total["params"], 136)
        XCTAssertNotNil(total["null_permute"])
        XCTAssertEqual(root["curve"]?.arrayValue?.count, 10)

        XCTAssertEqual(try String(contentsOfFile: path("plots/changed_per_step.csv"), encoding: .utf8)
                        .split(separator: "\n").count, 1 + 10)
        XCTAssertTrue(try String(contentsOfFile: path("plots/pure_update_ratio.csv"), encoding: .utf8)
                        .hasPrefix("bin,element_steps,changed,unchanged"))
        for key in ["hidden_never_left", "hidden_returned", "hidden_swamped", "spurious"] {
            XCTAssertNotNil(master[key], key)
        }
        XCTAssertNotNil(root["step_views"]?.objectValue?["changed_in_step"])
        let csv = try String(contentsOfFile: path("out.csv"), encoding: .utf8)
        let lines = csv.split(separator: "\n")
        XCTAssertEqual(lines.count, 1 + 2 * 5 + 5)  // header, tensor x policy, totals
        XCTAssertTrue(lines[0].hasPrefix("tensor,shape,params,policy,"))
        XCTAssertNotNil(total["null"]?.objectValue?["policies"]?.objectValue?["pure"], "the null runs for every policy")
        for name in ["visible_per_step.svg", "visibility_histogram.svg", "visible_by_ratio.svg",
                     "low_overlap_by_policy.svg", "changed_per_step.svg", "pure_update_ratio.svg"] {
            let svg = try String(contentsOfFile: path("plots/" + name), encoding: .utf8)
            XCTAssertTrue(svg.hasPrefix("<svg") || svg.hasPrefix("<?xml"), name)
        }

        // Outputs exist now: a second run without --force must refuse and change nothing.
        let before = try Data(contentsOf: URL(fileURLWithPath: path("out.json")))
        let again = try CLIRunner.run(["replay", stream, "--quiet", "--json", path("out.json")])
        XCTAssertEqual(again.status, 2)
        XCTAssertTrue(again.stderr.contains("--force"), again.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("out.json"))), before)
        // And it never overwrites its input, even with --force.
        let input = try CLIRunner.run(["replay", stream, "--quiet", "--force", "--json", stream])
        XCTAssertEqual(input.status, 2)
    }

    /// `--spectral` adds a per-policy object to each matrix in the JSON (numbers:
    /// PrecLabAnalysisTests.ReplaySpectralTests) and lists skipped tensors.
    func testSpectralAddsPerPolicyMetricsAndListsSkippedTensors() throws {
        let (stream, _) = try writeStream("spectral.bin")
        let result = try CLIRunner.run(["replay", stream, "--spectral", "--k", "4", "--rank", "4",
                                        "--json", path("s.json")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("spectral picture"), result.stdout)
        XCTAssertTrue(result.stdout.contains("skipped model.layers.0.norm.weight"), result.stdout)
        let root = try XCTUnwrap(try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path("s.json")))))
                                    .objectValue)
        let matrix = try XCTUnwrap(root["tensors"]?.arrayValue?.first?.objectValue)
        let spectral = try XCTUnwrap(matrix["spectral"]?.objectValue)
        XCTAssertEqual(spectral.keys, ["fp32", "master", "pure", "stochastic", "kahan"])
        XCTAssertEqual(spectral["fp32"]?.objectValue?["k"], 4)
        XCTAssertEqual(spectral["fp32"]?.objectValue?["changed"], matrix["true_changed"])
        XCTAssertEqual(root["spectral_skipped"]?.arrayValue?.count, 1)
        XCTAssertEqual(try CLIRunner.run(["replay", stream, "--spectral", "--alpha", "1.5"]).status, 2)
    }

    /// A real PyTorch AdamW loop recorded with tools/preclab_record.py replays with its
    /// FINL reproduced bit for bit. Needs torch: set PRECLAB_PYTHON to an interpreter
    /// that has it (skipped otherwise; CI need not have torch).
    func testReplayOfARealPyTorchRecording() throws {
        try XCTSkipUnless(PythonOracle.canImport("torch"),
                          "torch is not importable in \(PythonOracle.interpreter): the optional torch cross-check is skipped (`make pyenv-torch` adds it)")
        let script = """
        import sys
        sys.path.insert(0, sys.argv[1])
        import torch
        from preclab_record import TorchUpdateRecorder
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.Linear(64, 16))
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        recorder = TorchUpdateRecorder(optimizer, sys.argv[2], dict(model.named_parameters()))
        x, y = torch.randn(128, 32), torch.randn(128, 16)
        for _ in range(30):
            torch.nn.functional.mse_loss(model(x), y).backward()
            recorder.step()
            optimizer.zero_grad()
        recorder.close()
        """
        let scriptPath = path("train.py"), stream = path("torch.bin")
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        try PythonOracle.run(script, [CLIRunner.packageRoot.appendingPathComponent("tools").path, stream], timeout: 600)
        let result = try CLIRunner.run(["replay", stream, "--dtype", "bf16", "--json", path("torch.json")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("fp32 replay matches FINL bit for bit"), result.stdout)
        XCTAssertTrue(result.stdout.contains("0.weight"), result.stdout)
    }

    func testFinalMismatchIsBadDataWithStrict() throws {
        let (stream, _) = try writeStream("bad-final.bin", corruptFinal: true)
        let result = try CLIRunner.run(["replay", stream, "--quiet", "--strict", "--json", path("never.json")])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("does not reproduce FINL"), result.stderr)
        XCTAssertTrue(result.stderr.contains("model.layers.0.q_proj.weight"), result.stderr)
        XCTAssertTrue(result.stderr.contains("[2, 4]"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("never.json")))
    }

    /// A recorder that takes deltas as after - before in fp32 misses FINL where the
    /// subtraction is inexact: 0.3 -> -0.1 gives the delta fp32(-0.4), and 0.3 + (-0.4)
    /// = -0.099999994, one ULP from -0.1 (numpy float32 agrees); 0.001 -> -0.002 misses
    /// by one ULP the same way; 0.5 -> 0.75 and 0.25 -> 0.125 are exact. The replay
    /// exits 0 and reports both mismatches; --strict exits 1.
    func testAfterMinusBeforeDeltasMissingFinalByOneULPAreReported() throws {
        let file = path("after-minus-before.bin")
        let writer = try UpdateStreamWriter(path: file, tensors: [UpdateStreamTensor(name: "w", shape: [2, 2])])
        let before: [Float] = [0.3, 0.001, 0.5, 0.25]
        let after: [Float] = [-0.1, -0.002, 0.75, 0.125]
        let delta = zip(after, before).map { $0 - $1 }
        try before.withUnsafeBufferPointer { try writer.writeBase(values: $0) }
        try delta.withUnsafeBufferPointer { try writer.writeStep(step: 1, learningRate: 1e-3, values: $0) }
        try after.withUnsafeBufferPointer { try writer.writeFinal(values: $0) }
        try writer.close()

        let result = try CLIRunner.run(["replay", file, "--json", path("finl.json"), "--csv", path("finl.csv")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("FINL differs from the fp32 replay in 2 element(s), at most 1 ULP"),
                      result.stderr)
        XCTAssertTrue(result.stderr.contains("after - before"), result.stderr)
        XCTAssertTrue(result.stderr.contains("tools/preclab_record.py"), result.stderr)
        XCTAssertTrue(result.stdout.contains("FINL differs"), result.stdout)
        let root = try XCTUnwrap(JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path("finl.json")))))
            .objectValue)
        XCTAssertEqual(root["final_verified"], false)
        let mismatches = try XCTUnwrap(root["finl_mismatches"]?.objectValue)
        XCTAssertEqual(mismatches["count"], 2)
        XCTAssertEqual(mismatches["max_ulp_distance"], 1)
        let first = try XCTUnwrap(mismatches["first"]?.objectValue)
        XCTAssertEqual(first["tensor"], "w")
        XCTAssertEqual(first["index"], 0)
        XCTAssertEqual(first["position"], "[0, 0] (flat 0)")
        XCTAssertEqual(first["recorded_bits"], .string("0x" + String(Float(-0.1).bitPattern, radix: 16, uppercase: true)))
        XCTAssertTrue(try String(contentsOfFile: path("finl.csv"), encoding: .utf8).contains("FINL differs"))

        let strict = try CLIRunner.run(["replay", file, "--quiet", "--strict", "--json", path("strict.json")])
        XCTAssertEqual(strict.status, 1, strict.stderr)
        XCTAssertTrue(strict.stderr.contains("does not reproduce FINL: 2 element(s) differ"), strict.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("strict.json")))
    }

    /// --scale C multiplies every update: the stream's updates (at most 3e-4) on weights
    /// up to 0.08 (half an ULP there: 2^-12 ≈ 2.4e-4) mostly vanish in pure storage;
    /// scaled by 100 (0.03) they show. FINL is not compared and the output says so.
    func testScaleIsAnOpenLoopCounterfactual() throws {
        let (stream, _) = try writeStream("scale.bin")
        let plain = try CLIRunner.run(["replay", stream, "--quiet", "--json", path("plain.json")])
        let scaled = try CLIRunner.run(["replay", stream, "--quiet", "--scale", "100", "--json", path("scaled.json")])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertEqual(scaled.status, 0, scaled.stderr)
        XCTAssertTrue(scaled.stderr.contains("open-loop"), scaled.stderr)
        func visible(_ name: String) throws -> Int64 {
            let root = try XCTUnwrap(JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path(name)))))
                .objectValue)
            return try XCTUnwrap(root["total"]?.objectValue?["policies"]?.objectValue?["pure"]?.objectValue?[
                "visible_changed"]?.integerValue)
        }
        XCTAssertGreaterThan(try visible("scaled.json"), try visible("plain.json"))
        XCTAssertFalse(try String(contentsOfFile: path("scaled.json"), encoding: .utf8).contains("\"scale\": 1,"))
        XCTAssertEqual(try CLIRunner.run(["replay", stream, "--scale", "x"]).status, 2)
        XCTAssertEqual(try CLIRunner.run(["replay", stream, "--scale", "inf"]).status, 2)
    }

    func testGapsWarnInEveryOutputFormat() throws {
        let (stream, _) = try writeStream("gaps.bin", steps: [1, 2, 5, 6, 10])
        let result = try CLIRunner.run(["replay", stream, "--json", path("gaps.json"), "--csv", path("gaps.csv"),
                                        "--plots", path("gplots")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("gap"), result.stdout)
        XCTAssertTrue(result.stderr.contains("gap"), result.stderr)
        XCTAssertTrue(try String(contentsOfFile: path("gaps.json"), encoding: .utf8).contains("2 gap(s)"))
        XCTAssertTrue(try String(contentsOfFile: path("gaps.csv"), encoding: .utf8).contains("2 gap(s)"))
        XCTAssertTrue(try String(contentsOfFile: path("gplots/visible_per_step.svg"), encoding: .utf8).contains("gap"))
    }

    func testStreamWithoutBaseNeedsACheckpoint() throws {
        let (stream, initial) = try writeStream("nobase.bin", base: false)
        let missing = try CLIRunner.run(["replay", stream, "--quiet"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("--base"), missing.stderr)

        // A safetensors checkpoint with the base weights (F32), written by hand.
        let checkpoint = path("base.safetensors")
        try writeSafetensors(checkpoint, tensors: [
            ("model.layers.0.q_proj.weight", [16, 8], Array(initial[0..<128])),
            ("model.layers.0.norm.weight", [8], Array(initial[128..<136])),
        ])
        let replayed = try CLIRunner.run(["replay", stream, "--quiet", "--base", checkpoint, "--json", path("b.json")])
        XCTAssertEqual(replayed.status, 0, replayed.stderr)
        XCTAssertTrue(try String(contentsOfFile: path("b.json"), encoding: .utf8).contains("\"final_verified\": true"))

        let wrongShape = path("wrong.safetensors")
        try writeSafetensors(wrongShape, tensors: [("model.layers.0.q_proj.weight", [8, 16], Array(initial[0..<128]))])
        let mismatch = try CLIRunner.run(["replay", stream, "--quiet", "--base", wrongShape])
        XCTAssertEqual(mismatch.status, 1)
        XCTAssertTrue(mismatch.stderr.contains("shape"), mismatch.stderr)
        XCTAssertTrue(mismatch.stderr.contains("model.layers.0.norm.weight' is missing"), mismatch.stderr)
    }

    /// `--null KIND` and `--signed-zero-changes` reach the replay (the numbers:
    /// AttributionReplayTests); the null runs under every policy, spectral included.
    func testNullKindsAndSignedZeroFlag() throws {
        let (stream, _) = try writeStream("n.bin")
        for kind in ["permute-rows", "permute-cols"] {
            let json = path("n-\(kind).json")
            let result = try CLIRunner.run(["replay", stream, "--null", kind, "--signed-zero-changes", "--spectral",
                                            "--k", "2", "--rank", "2", "--json", json, "--quiet"])
            XCTAssertEqual(result.status, 0, result.stderr)
            let root = try XCTUnwrap(JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: json)))).objectValue)
            XCTAssertEqual(root["null_model"], .string(kind))
            XCTAssertEqual(root["signed_zero_changes"], true)
            let first = try XCTUnwrap(root["tensors"]?.arrayValue?.first?.objectValue)
            XCTAssertEqual(first["null"]?.objectValue?["kind"], .string(kind))
            XCTAssertNotNil(first["null"]?.objectValue?["policies"]?.objectValue?["kahan"])
            XCTAssertNotNil(first["spectral_null"]?.objectValue?["stochastic"])
        }
        let plain = path("n-plain.json")
        XCTAssertEqual(try CLIRunner.run(["replay", stream, "--json", plain, "--quiet"]).status, 0)
        let root = try XCTUnwrap(JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: plain)))).objectValue)
        XCTAssertEqual(root["null_model"], .null)
        XCTAssertEqual(root["signed_zero_changes"], false)
    }

    func testUsageErrors() throws {
        let (stream, _) = try writeStream("u.bin")
        XCTAssertEqual(try CLIRunner.run(["replay"]).status, 2)
        XCTAssertEqual(try CLIRunner.run(["replay", stream, "--policy", "fp64"]).status, 2)
        XCTAssertEqual(try CLIRunner.run(["replay", stream, "--dtype", "fp7"]).status, 2)
        XCTAssertEqual(try CLIRunner.run(["replay", stream, "--null", "shuffle"]).status, 2)
        XCTAssertEqual(try CLIRunner.run(["replay", stream, "--every", "0"]).status, 2)
        XCTAssertEqual(try CLIRunner.run(["replay", path("absent.bin")]).status, 1)
    }

    func testOtherFormatsAndPolicySubsets() throws {
        let (stream, _) = try writeStream("f.bin")
        for dtype in ["fp16", "e4m3fn", "e5m2", "e5m10", "tf32"] {
            let result = try CLIRunner.run(["replay", stream, "--dtype", dtype, "--policy", "master,pure",
                                            "--rounding", "toward-zero", "--json", path("\(dtype).json")])
            XCTAssertEqual(result.status, 0, "\(dtype): \(result.stderr)")
            let text = try String(contentsOfFile: path("\(dtype).json"), encoding: .utf8)
            XCTAssertTrue(text.contains("\"policies\": [\"master\", \"pure\"]"), dtype)
        }
    }

    /// A minimal safetensors writer for the test (F32 tensors, offsets in order).
    private func writeSafetensors(_ file: String, tensors: [(String, [Int], [Float])]) throws {
        var header = JSONObject()
        var offset = 0
        for (name, shape, values) in tensors {
            header[name] = .object(JSONObject([("dtype", "F32"), ("shape", .array(shape.map { .int($0) })),
                                               ("data_offsets", [.int(offset), .int(offset + values.count * 4)])]))
            offset += values.count * 4
        }
        var text = Array(JSONValue.object(header).serialized(indent: 0).utf8)
        while text.count % 8 != 0 { text.append(0x20) }
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(text.count).littleEndian) { bytes += $0 }
        bytes += text
        for (_, _, values) in tensors { values.withUnsafeBytes { bytes += $0 } }
        try Data(bytes).write(to: URL(fileURLWithPath: file))
    }
}
