import Foundation
import PrecLabFiles
import PrecLabSupport
import PrecLabTestFixtures
import PrecLabTestSupport
import XCTest

final class CompareCommandTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws { directory = try CLIRunner.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func tensor(_ json: JSONValue, _ name: String) -> JSONValue? {
        json["tensors"]?.arrayValue?.first { $0["name"]?.stringValue == name }
    }

    /// The command writes what the library computes (numbers: PrecLabAnalysisTests):
    /// JSON, CSV with a header and a row per tensor, the four plots, the tables.
    func testWritesEveryOutputOfAHandCheckedPair() throws {
        let (q, _) = try Fixtures.writeHandCheckedPair(base: path("base.safetensors"), tuned: path("tuned.safetensors"))
        let json = path("out.json"), csv = path("out.csv"), plots = path("plots")
        let result = try CLIRunner.run(["compare", path("base.safetensors"), path("tuned.safetensors"),
                                        "--k", "1", "--rank", "1", "--svd", "exact",
                                        "--json", json, "--csv", csv, "--plots", plots])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("layers.0.self_attn.q_proj"), result.stdout)
        XCTAssertTrue(result.stdout.contains("1-D tensor: sparsity only"), result.stdout)
        // Under an exact SVD the option line has no randomized-SVD parameters.
        XCTAssertTrue(result.stdout.contains("svd exact, float64"), result.stdout)
        XCTAssertFalse(result.stdout.contains("oversampling"), result.stdout)
        let report = try Fixtures.readJSON(json)
        let row = try XCTUnwrap(tensor(report, q))
        XCTAssertEqual(row["changed"]?.integerValue, 1)
        XCTAssertEqual(row["nss"]!.doubleValue!, 0.2, accuracy: 1e-15)
        XCTAssertEqual(report["total"]?["changed"]?.integerValue, 2)
        XCTAssertEqual(report["options"]?["svd"]?.stringValue, "exact")
        XCTAssertEqual(report["skipped"]?[0]?["scope"]?.stringValue, "spectral")
        let csvText = try String(contentsOfFile: csv, encoding: .utf8)
        XCTAssertTrue(csvText.hasPrefix("name,layer,type,shape,params,changed,sparsity,nss"), csvText)
        XCTAssertEqual(csvText.split(separator: "\n").count, 3)
        for file in ["singular_values.svg", "principal_angles.svg", "nss_by_layer.svg", "max_angle_by_layer.svg",
                     "overlaps_by_type.svg"] {
            let text = try String(contentsOfFile: plots + "/" + file, encoding: .utf8)
            XCTAssertTrue(text.contains("<svg"), file)
        }
        // Under auto the randomized parameters are shown.
        let auto = try CLIRunner.run(["compare", path("base.safetensors"), path("tuned.safetensors"), "--k", "1",
                                      "--rank", "1", "--svd", "auto", "--quiet"])
        XCTAssertTrue(auto.stdout.contains("svd auto (oversampling"), auto.stdout)
        // Without --svd the SVD is exact.
        let plain = try CLIRunner.run(["compare", path("base.safetensors"), path("tuned.safetensors"), "--k", "1",
                                       "--rank", "1", "--quiet"])
        XCTAssertTrue(plain.stdout.contains("svd exact, float64"), plain.stdout)
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
        try PythonOracle.require("numpy", "scipy")
        let output = Array(try PythonOracle.run(script, [path("base.safetensors"), path("tuned.safetensors")]).utf8)
        let expected = try JSONParser.parse(Array(output))
        XCTAssertEqual(row["changed"]?.integerValue, expected["changed"]?.integerValue)
        XCTAssertEqual(row["nss"]!.doubleValue!, expected["nss"]!.doubleValue!, accuracy: 1e-12)
        XCTAssertEqual(row["angle_u_max_deg"]!.doubleValue!, expected["u"]!.doubleValue!, accuracy: 1e-9)
        XCTAssertEqual(row["angle_v_max_deg"]!.doubleValue!, expected["v"]!.doubleValue!, accuracy: 1e-9)
        XCTAssertEqual(row["principal_overlap"]?.doubleValue, expected["princ"]?.doubleValue)
        XCTAssertEqual(row["low_overlap"]?.doubleValue, expected["low"]?.doubleValue)
    }
}
