import Foundation
import PrecLabFiles
import PrecLabSupport
import XCTest

final class CompareCommandTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws { directory = try CLIRunner.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func tensor(_ json: JSONValue, _ name: String) -> JSONValue? {
        json["tensors"]?.arrayValue?.first { $0["name"]?.stringValue == name }
    }

    /// W0 = diag(3, 4), W1 = diag(3, 5) in bf16 (exact), k = rank = 1, α = 0.5:
    /// - M = {3}: sparsity 3/4.
    /// - σ(W0) = (4, 3), σ(W1) = (5, 3): NSS = 1/5.
    /// - top-1 subspaces are e2 for both: angles 0.
    /// - rank-1 reconstruction of W0 = 4 e2 e2ᵀ, |.| = [0, 0, 0, 4]: top 2 = {3, then
    ///   the tie at 0 goes to index 0}; M ⊂ it: principal overlap 1.
    /// - bottom 2 of |W0| = [3, 0, 0, 4]: {1, 2}: low overlap 0.
    /// The 1-D norm changes by one bf16 ulp at 1 (2^-7) in one of four entries.
    func testHandCheckedPair() throws {
        let q = "model.layers.0.self_attn.q_proj.weight", norm = "model.layers.0.input_layernorm.weight"
        try Fixtures.write(path("base.safetensors"), [
            FixtureTensor(name: q, dtype: .bf16, shape: [2, 2], values: [3, 0, 0, 4]),
            FixtureTensor(name: norm, dtype: .bf16, shape: [4], values: [1, 1, 1, 1]),
        ])
        try Fixtures.write(path("tuned.safetensors"), [
            FixtureTensor(name: q, dtype: .bf16, shape: [2, 2], values: [3, 0, 0, 5]),
            FixtureTensor(name: norm, dtype: .bf16, shape: [4], values: [1, 1, 1, 1 + 0x1p-7]),
        ])
        let json = path("out.json"), csv = path("out.csv"), plots = path("plots")
        let result = try CLIRunner.run(["compare", path("base.safetensors"), path("tuned.safetensors"),
                                        "--k", "1", "--rank", "1", "--json", json, "--csv", csv, "--plots", plots])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("layers.0.self_attn.q_proj"), result.stdout)
        XCTAssertTrue(result.stdout.contains("1-D tensor: sparsity only"), result.stdout)
        let report = try Fixtures.readJSON(json)
        let row = try XCTUnwrap(tensor(report, q))
        XCTAssertEqual(row["changed"]?.integerValue, 1)
        XCTAssertEqual(row["params"]?.integerValue, 4)
        XCTAssertEqual(row["sparsity"]?.doubleValue, 0.75)
        XCTAssertEqual(row["nss"]!.doubleValue!, 0.2, accuracy: 1e-15)
        XCTAssertEqual(row["angle_u_max_deg"]!.doubleValue!, 0, accuracy: 1e-9)
        XCTAssertEqual(row["angle_v_max_deg"]!.doubleValue!, 0, accuracy: 1e-9)
        XCTAssertEqual(row["principal_overlap"]?.doubleValue, 1)
        XCTAssertEqual(row["low_overlap"]?.doubleValue, 0)
        XCTAssertEqual(row["alpha"]?.doubleValue, 0.5)
        XCTAssertEqual(row["k"]?.integerValue, 1)
        XCTAssertEqual(row["rank"]?.integerValue, 1)
        XCTAssertEqual(row["type"]?.stringValue, "q")
        XCTAssertEqual(row["layer"]?.integerValue, 0)
        XCTAssertEqual(row["bounds"]?["weyl"]?["holds"]?.boolValue, true)
        let normRow = try XCTUnwrap(tensor(report, norm))
        XCTAssertEqual(normRow["changed"]?.integerValue, 1)
        XCTAssertEqual(normRow["nss"], .null)
        XCTAssertEqual(report["total"]?["params"]?.integerValue, 8)
        XCTAssertEqual(report["total"]?["changed"]?.integerValue, 2)
        XCTAssertEqual(report["total"]?["sparsity"]?.doubleValue, 0.75)
        XCTAssertEqual(try XCTUnwrap(report["by_type"]?["q"]?["nss"]?.doubleValue), 0.2, accuracy: 1e-15)
        XCTAssertEqual(report["options"]?["alpha"]?.doubleValue, 0.5)
        XCTAssertEqual(report["options"]?["dtype"]?.stringValue, "bf16")
        XCTAssertEqual(report["skipped"]?[0]?["name"]?.stringValue, norm)
        XCTAssertEqual(report["skipped"]?[0]?["scope"]?.stringValue, "spectral")
        let csvText = try String(contentsOfFile: csv, encoding: .utf8)
        XCTAssertTrue(csvText.hasPrefix("name,layer,type,shape,params,changed,sparsity,nss"), csvText)
        XCTAssertEqual(csvText.split(separator: "\n").count, 3)
        for file in ["singular_values.svg", "principal_angles.svg", "nss_by_layer.svg", "max_angle_by_layer.svg"] {
            let text = try String(contentsOfFile: plots + "/" + file, encoding: .utf8)
            XCTAssertTrue(text.contains("<svg"), file)
        }
    }

    /// fp32 checkpoints are rounded to bf16 before comparing: at 1 a change of 2^-10
    /// is below half a bf16 ulp (2^-8) and vanishes; at 4 a change of 2^-5 is one bf16
    /// ulp and stays. In fp32 both changes are visible.
    /// The same holds for F64 and F16 storage (all four values are exact in fp16).
    func testWiderCheckpointsAreCastToDType() throws {
        let name = "w"
        for stored in [TensorDType.f32, .f64, .f16] {
            try Fixtures.write(path("base.safetensors"), [FixtureTensor(name: name, dtype: stored, shape: [2, 2], values: [1, 2, 4, 8])])
            try Fixtures.write(path("tuned.safetensors"),
                               [FixtureTensor(name: name, dtype: stored, shape: [2, 2], values: [1 + 0x1p-10, 2, 4 + 0x1p-5, 8])])
            for (dtype, changed) in [("bf16", 1), ("fp32", 2)] {
                let json = path("\(stored.name)-\(dtype).json")
                let result = try CLIRunner.run(["compare", path("base.safetensors"), path("tuned.safetensors"),
                                                "--dtype", dtype, "--json", json, "--quiet"])
                XCTAssertEqual(result.status, 0, result.stderr)
                let row = try XCTUnwrap(tensor(try Fixtures.readJSON(json), name))
                XCTAssertEqual(row["changed"]?.integerValue, Int64(changed), "\(stored.name) as \(dtype)")
                XCTAssertEqual(row["converted"]?.boolValue, !(dtype == "fp32" && stored == .f32))
            }
        }
    }

    /// A sharded TUNED checkpoint gives the same numbers as the single file; missing and
    /// mismatched tensors are listed with reasons, never dropped silently.
    func testShardedCheckpointAndMismatchedTensors() throws {
        var random = Fixtures.Random(state: 42)
        let a = (0..<(6 * 5)).map { _ in random.next() }
        let aTuned = a.enumerated().map { $0.offset % 3 == 0 ? $0.element * 1.02 : $0.element }
        let c = (0..<9).map { _ in random.next() }
        try Fixtures.write(path("base.safetensors"), [
            FixtureTensor(name: "model.layers.1.mlp.up_proj.weight", dtype: .bf16, shape: [6, 5], values: a),
            FixtureTensor(name: "model.layers.1.mlp.gate_proj.weight", dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 4]),
            FixtureTensor(name: "model.layers.1.mlp.down_proj.weight", dtype: .bf16, shape: [3, 3], values: c),
            FixtureTensor(name: "model.layers.1.steps", dtype: .i64, shape: [1], values: [3]),
        ])
        let up = FixtureTensor(name: "model.layers.1.mlp.up_proj.weight", dtype: .bf16, shape: [6, 5], values: aTuned)
        let gate = FixtureTensor(name: "model.layers.1.mlp.gate_proj.weight", dtype: .bf16, shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let extra = FixtureTensor(name: "lm_head.weight", dtype: .bf16, shape: [2, 2], values: [1, 0, 0, 1])
        let steps = FixtureTensor(name: "model.layers.1.steps", dtype: .i64, shape: [1], values: [4])
        let sharded = path("tuned")
        try FileManager.default.createDirectory(atPath: sharded, withIntermediateDirectories: true)
        try Fixtures.writeSharded(sharded, [[up, steps], [gate, extra]])
        try Fixtures.write(path("tuned.safetensors"), [up, gate, extra, steps])

        var reports: [JSONValue] = []
        for tuned in [sharded, sharded + "/model.safetensors.index.json", path("tuned.safetensors")] {
            let json = path("out-\(reports.count).json")
            let result = try CLIRunner.run(["compare", path("base.safetensors"), tuned, "--k", "2", "--rank", "2",
                                            "--json", json])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertTrue(result.stdout.contains("missing in TUNED"), result.stdout)
            reports.append(try Fixtures.readJSON(json))
        }
        for report in reports.dropFirst() {
            XCTAssertEqual(report["tensors"], reports[0]["tensors"], "sharded and single-file results must agree")
        }
        let report = reports[0]
        XCTAssertEqual(report["tensors"]?.arrayValue?.count, 1)
        let row = try XCTUnwrap(tensor(report, "model.layers.1.mlp.up_proj.weight"))
        XCTAssertEqual(row["changed"]?.integerValue, 10, "every third of 30 entries scaled by 1.02 (> half a bf16 ulp)")
        let skipped = Dictionary(uniqueKeysWithValues: (report["skipped"]?.arrayValue ?? []).map {
            ($0["name"]!.stringValue!, $0["reason"]!.stringValue!)
        })
        XCTAssertEqual(skipped["model.layers.1.mlp.gate_proj.weight"], "shape [2, 2] in BASE vs [2, 3] in TUNED")
        XCTAssertEqual(skipped["model.layers.1.mlp.down_proj.weight"], "missing in TUNED")
        XCTAssertEqual(skipped["lm_head.weight"], "missing in BASE")
        XCTAssertEqual(skipped["model.layers.1.steps"], "dtype I64 is not a floating-point type")
    }

    func testNothingComparableIsBadData() throws {
        try Fixtures.write(path("a.safetensors"), [FixtureTensor(name: "w", dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 4])])
        try Fixtures.write(path("b.safetensors"), [FixtureTensor(name: "w", dtype: .bf16, shape: [4], values: [1, 2, 3, 4])])
        let mismatch = try CLIRunner.run(["compare", path("a.safetensors"), path("b.safetensors")])
        XCTAssertEqual(mismatch.status, 1)
        XCTAssertTrue(mismatch.stderr.contains("nothing to compare") && mismatch.stderr.contains("shape [2, 2] in BASE vs [4] in TUNED"),
                      mismatch.stderr)
        let none = try CLIRunner.run(["compare", path("a.safetensors"), path("a.safetensors"), "--tensors", "^q_proj$"])
        XCTAssertEqual(none.status, 1)
        XCTAssertTrue(none.stderr.contains("nothing to compare"), none.stderr)
        // A file that is not safetensors: exit 1 naming it, no backtrace.
        try "not a checkpoint".write(toFile: path("bad.safetensors"), atomically: true, encoding: .utf8)
        let bad = try CLIRunner.run(["compare", path("bad.safetensors"), path("a.safetensors")])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("bad.safetensors"), bad.stderr)
        XCTAssertFalse(bad.stderr.contains("Backtrace"), bad.stderr)
    }

    func testUsageErrorsExitTwo() throws {
        try Fixtures.write(path("a.safetensors"), [FixtureTensor(name: "w", dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 4])])
        let a = path("a.safetensors")
        let cases: [[String]] = [
            [a], [a, a, a], [a, a, "--alpha", "1.5"], [a, a, "--alpha", "-0.1"], [a, a, "--k", "0"],
            [a, a, "--rank", "x"], [a, a, "--tensors", "("], [a, a, "--dtype", "float7"], [a, a, "--svd", "fast"],
            [a, a, "--bogus"],
        ]
        for arguments in cases {
            let result = try CLIRunner.run(["compare"] + arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertFalse(result.stderr.contains("Backtrace"), result.stderr)
        }
    }

    func testExistingOutputNeedsForceAndInputsAreNeverOverwritten() throws {
        try Fixtures.write(path("a.safetensors"), [FixtureTensor(name: "w", dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 4])])
        try Fixtures.write(path("b.safetensors"), [FixtureTensor(name: "w", dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 5])])
        let json = path("out.json")
        try "keep".write(toFile: json, atomically: true, encoding: .utf8)
        let refused = try CLIRunner.run(["compare", path("a.safetensors"), path("b.safetensors"), "--json", json])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertEqual(try String(contentsOfFile: json, encoding: .utf8), "keep")
        let forced = try CLIRunner.run(["compare", path("a.safetensors"), path("b.safetensors"), "--json", json, "--force"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertEqual(try Fixtures.readJSON(json)["total"]?["changed"]?.integerValue, 1)
        let overwriteInput = try CLIRunner.run(["compare", path("a.safetensors"), path("b.safetensors"),
                                                "--json", path("b.safetensors"), "--force"])
        XCTAssertNotEqual(overwriteInput.status, 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("b.safetensors"))).count > 8, true)
    }

    /// The JSON is byte-identical whatever PRECLAB_THREADS or OPENBLAS_NUM_THREADS say:
    /// small matrices always use one BLAS thread, large ones (here 600x450 > 512²)
    /// always exactly two.
    func testResultsDoNotDependOnThreadSettings() throws {
        var random = Fixtures.Random(state: 99)
        var base: [FixtureTensor] = [], tuned: [FixtureTensor] = []
        for (index, shape) in [[600, 450], [40, 30], [30, 40], [64, 64]].enumerated() {
            let values = (0..<(shape[0] * shape[1])).map { _ in 0.02 * random.next() }
            let name = "model.layers.\(index).mlp.up_proj.weight"
            base.append(FixtureTensor(name: name, dtype: .bf16, shape: shape, values: values))
            tuned.append(FixtureTensor(name: name, dtype: .bf16, shape: shape, values: values.map { $0 + 1e-4 * random.next() }))
        }
        try Fixtures.write(path("base.safetensors"), base)
        try Fixtures.write(path("tuned.safetensors"), tuned)
        var outputs: [Data] = []
        for environment in [["PRECLAB_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"],
                            ["PRECLAB_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"]] {
            let json = path("out-\(outputs.count).json")
            let result = try CLIRunner.run(["compare", path("base.safetensors"), path("tuned.safetensors"), "--k", "8",
                                            "--rank", "8", "--svd", "auto", "--json", json, "--quiet"],
                                           environment: environment)
            XCTAssertEqual(result.status, 0, result.stderr)
            outputs.append(try Data(contentsOf: URL(fileURLWithPath: json)))
        }
        XCTAssertEqual(outputs[0], outputs[1])
        let row = try XCTUnwrap(tensor(try Fixtures.readJSON(path("out-0.json")), "model.layers.0.mlp.up_proj.weight"))
        XCTAssertEqual(row["svd"]?.stringValue, "randomized")
    }

    /// Sparsity, NSS, principal angles and mask overlaps against numpy/scipy reading the
    /// same files (skipped when python3 with numpy and scipy is unavailable).
    func testAgainstNumpyReference() throws {
        var random = Fixtures.Random(state: 7)
        let (m, n) = (20, 14)
        // A gapped spectrum keeps the top-3 subspaces well defined: W0 = big rank-3 part + noise.
        var w0 = [Double](repeating: 0, count: m * n)
        for r in 0..<3 {
            let u = (0..<m).map { _ in random.next() }, v = (0..<n).map { _ in random.next() }
            for i in 0..<m { for j in 0..<n { w0[i * n + j] += Double(3 - r) * u[i] * v[j] } }
        }
        for index in w0.indices { w0[index] += 0.05 * random.next() }
        let w1 = w0.map { $0 + 0.01 * random.next() }
        let name = "model.layers.4.self_attn.k_proj.weight"
        try Fixtures.write(path("base.safetensors"), [FixtureTensor(name: name, dtype: .bf16, shape: [m, n], values: w0)])
        try Fixtures.write(path("tuned.safetensors"), [FixtureTensor(name: name, dtype: .bf16, shape: [m, n], values: w1)])
        let json = path("out.json")
        let result = try CLIRunner.run(["compare", path("base.safetensors"), path("tuned.safetensors"), "--k", "3",
                                        "--rank", "2", "--alpha", "0.3", "--json", json, "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let row = try XCTUnwrap(tensor(try Fixtures.readJSON(json), name))

        let script = """
        import sys, json, struct, numpy as np, scipy.linalg as sl
        def load(p):
            raw = open(p, 'rb').read(); n = struct.unpack('<Q', raw[:8])[0]; h = json.loads(raw[8:8+n])
            t = [v for k, v in h.items() if k != '__metadata__'][0]; b, e = t['data_offsets']
            codes = np.frombuffer(raw[8+n+b:8+n+e], dtype='<u2').reshape(t['shape'])
            return codes, (codes.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        ca, a = load(sys.argv[1]); cb, b = load(sys.argv[2]); k, r, alpha = 3, 2, 0.3
        M = (ca != cb).ravel()
        sa = np.linalg.svd(a, compute_uv=False); sb = np.linalg.svd(b, compute_uv=False)
        ua, _, vta = np.linalg.svd(a); ub, _, vtb = np.linalg.svd(b)
        angU = sl.subspace_angles(ua[:, :k], ub[:, :k]); angV = sl.subspace_angles(vta[:k].T, vtb[:k].T)
        assert max(angU.max(), angV.max()) < np.pi / 4   # scipy pairs correctly below 45 degrees
        U, S, Vt = np.linalg.svd(a); rec = np.abs((U[:, :r] * S[:r]) @ Vt[:r]).ravel()
        size = int(np.floor(alpha * a.size + 0.5)); idx = np.arange(a.size)
        princ = np.zeros(a.size, bool); princ[np.lexsort((idx, -rec))[:size]] = True
        low = np.zeros(a.size, bool); low[np.lexsort((idx, np.abs(a).ravel()))[:size]] = True
        print(json.dumps(dict(changed=int(M.sum()), nss=float(np.linalg.norm(sb - sa) / np.linalg.norm(sa)),
            u=float(np.degrees(angU.max())), v=float(np.degrees(angV.max())),
            princ=float((princ & M).sum() / M.sum()), low=float((low & M).sum() / M.sum()))))
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, path("base.safetensors"), path("tuned.safetensors")]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw XCTSkip("python3 with numpy and scipy not available") }
        let expected = try JSONParser.parse(Array(output))
        XCTAssertEqual(row["changed"]?.integerValue, expected["changed"]?.integerValue)
        XCTAssertEqual(row["nss"]!.doubleValue!, expected["nss"]!.doubleValue!, accuracy: 1e-12)
        XCTAssertEqual(row["angle_u_max_deg"]!.doubleValue!, expected["u"]!.doubleValue!, accuracy: 1e-9)
        XCTAssertEqual(row["angle_v_max_deg"]!.doubleValue!, expected["v"]!.doubleValue!, accuracy: 1e-9)
        XCTAssertEqual(row["principal_overlap"]?.doubleValue, expected["princ"]?.doubleValue)
        XCTAssertEqual(row["low_overlap"]?.doubleValue, expected["low"]?.doubleValue)
    }
}
