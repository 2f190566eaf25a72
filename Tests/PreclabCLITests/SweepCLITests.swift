import Foundation
import XCTest

/// `preclab sweep` through the built binary: a tiny experiment end to end, and the
/// refusals (bad experiment files, existing outputs).
final class SweepCLITests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws { directory = try CLIRunner.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Two grid points (lr 1e-5 and 1e-3), two 32-wide matrices, 5 steps.
    private let tinyExperiment = """
    {
      "name": "tiny",
      "question": "Does the runner work end to end?",
      "stream": { "shapes": ["32x32", "32x48"], "steps": 5, "lr": 1e-5, "profile": "rl", "seed": 7, "k": 4 },
      "grid": { "lr": [1e-5, 1e-3] },
      "replay": { "dtype": "bf16", "policies": ["fp32", "master", "pure"], "null": true, "curve_every": 1 },
      "spectral": { "rank": 4, "alpha": 0.5 },
      "outputs": ["sparsity", "curve", "magnitude", "spectral"]
    }
    """

    private func write(_ text: String, to name: String) throws -> String {
        let file = path(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        return file
    }

    /// CSV lines split into fields (the sweep's CSVs have no quoted fields).
    private func csv(_ file: String) throws -> (header: [String], rows: [[String]]) {
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map {
            $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        return (lines[0], Array(lines.dropFirst()))
    }

    private let pointColumns = ["point", "profile", "placement", "snr", "noise_rms", "rotation", "row_spread",
                                "col_spread", "base_tail", "k", "lr", "steps", "seed", "dtype"]

    private func contents(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    func testTinySweepRunsEndToEnd() throws {
        let experiment = try write(tinyExperiment, to: "tiny.json")
        let scratch = path("scratch")
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let out = path("out")
        let result = try CLIRunner.run(["sweep", experiment, "--out", out],
                                       environment: ["TMPDIR": scratch, "PRECLAB_THREADS": "1"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(contents(out), ["README.md", "curve.csv", "magnitude.csv", "sparsity.svg", "spectral.csv",
                                       "spectral_angles.svg", "spectral_drift.svg", "spectral_overlaps.svg",
                                       "summary.csv", "visible_by_magnitude.svg", "visible_vs_step.svg"])
        XCTAssertEqual(contents(scratch), [], "the scratch streams must be deleted")

        var summary = try csv(out + "/summary.csv")
        XCTAssertEqual(summary.header, pointColumns + ["policy", "params",
                                        "true_changed", "visible_changed", "sparsity", "true_sparsity", "hidden",
                                        "relative_error", "low_overlap_0.5"])
        // The knob columns hold the rl preset's values and the stream's k; then the
        // rows are cut to the columns of the file's earlier layout, which the checks below index.
        for row in summary.rows {
            XCTAssertEqual(Array(row[1 ... 9]), ["rl", "off", "0.1", "0.001", "0", "0", "0", "0", "4"])
        }
        summary.rows = summary.rows.map { [$0[0], $0[1]] + Array($0[10...]) }
        // Two points, each with three policies and the null model, in that order.
        XCTAssertEqual(summary.rows.map { [$0[0], $0[2], $0[6]] }, [
            ["0", "1e-05", "fp32"], ["0", "1e-05", "master"], ["0", "1e-05", "pure"], ["0", "1e-05", "null"],
            ["1", "0.001", "fp32"], ["1", "0.001", "master"], ["1", "0.001", "pure"], ["1", "0.001", "null"],
        ])
        let params = 32 * 32 + 32 * 48
        for row in summary.rows {
            XCTAssertEqual(Array(row[1...5]), ["rl", row[2], "5", "7", "bf16"])
            XCTAssertEqual(row[7], String(params))
            let visible = Double(row[9])!, sparsity = Double(row[10])!
            XCTAssertEqual(sparsity, 1 - visible / Double(params), accuracy: 1e-12)
        }
        func sparsity(point: String, policy: String) -> Double {
            Double(summary.rows.first { $0[0] == point && $0[6] == policy }![10])!
        }
        // fp32 truth: every weight moves in 5 Adam steps.
        XCTAssertEqual(sparsity(point: "0", policy: "fp32"), 0)
        // lr 1e-3 for 5 steps moves weights of RMS 0.02 by far more than half a bf16 ULP
        // (2^-9 relative, about 4e-5): almost everything is visible; at lr 1e-5 the
        // cumulative update (at most 5e-5) hides most weights.
        XCTAssertLessThan(sparsity(point: "1", policy: "master"), 0.1)
        XCTAssertGreaterThan(sparsity(point: "0", policy: "master"), 0.5)
        XCTAssertGreaterThan(sparsity(point: "0", policy: "master"), sparsity(point: "1", policy: "master"))

        // The same stream through `preclab synth` and `preclab replay` gives the same counts.
        let stream = path("point1.stream"), replayCSV = path("point1.csv")
        let synth = try CLIRunner.run(["synth", "-o", stream, "--shape", "32x32,32x48", "--steps", "5",
                                       "--lr", "1e-3", "--profile", "rl", "--seed", "7", "--k", "4"])
        XCTAssertEqual(synth.status, 0, synth.stderr)
        let replay = try CLIRunner.run(["replay", stream, "--policy", "fp32,master,pure", "--null", "permute",
                                        "--csv", replayCSV, "--quiet"])
        XCTAssertEqual(replay.status, 0, replay.stderr)
        let replayed = try csv(replayCSV)
        let tensorColumn = replayed.header.firstIndex(of: "tensor")!
        let policyColumn = replayed.header.firstIndex(of: "policy")!
        let visibleColumn = replayed.header.firstIndex(of: "visible_changed")!
        let nullColumn = replayed.header.firstIndex(of: "null_visible_changed")!
        for policy in ["fp32", "master", "pure"] {
            let expected = replayed.rows.first { $0[tensorColumn] == "TOTAL" && $0[policyColumn] == policy }!
            let got = summary.rows.first { $0[0] == "1" && $0[6] == policy }!
            XCTAssertEqual(got[9], expected[visibleColumn], policy)
            if policy == "master" {
                let null = summary.rows.first { $0[0] == "1" && $0[6] == "null" }!
                XCTAssertEqual(null[9], expected[nullColumn])
            }
        }

        // Curve: one row per step 1...5, policy and point.
        var curve = try csv(out + "/curve.csv")
        XCTAssertEqual(curve.header, pointColumns + ["step", "policy", "changed", "fraction_changed"])
        curve.rows = curve.rows.map { [$0[0], $0[1]] + Array($0[10...]) }
        XCTAssertEqual(curve.rows.count, 2 * 5 * 3)
        XCTAssertEqual(Set(curve.rows.map { $0[6] }), ["1", "2", "3", "4", "5"])
        // The last curve point is the final state of the summary.
        for policy in ["master", "pure"] {
            let last = curve.rows.first { $0[0] == "1" && $0[6] == "5" && $0[7] == policy }!
            XCTAssertEqual(last[8], summary.rows.first { $0[0] == "1" && $0[6] == policy }![9])
        }

        // Magnitude: the null model per octave sums to the replay's null total (two
        // implementations of the same permutation), and every policy's bins sum to its total.
        var magnitude = try csv(out + "/magnitude.csv")
        XCTAssertEqual(magnitude.header, pointColumns + ["magnitude_bin", "weights", "policy", "visible",
                                                         "fraction_visible"])
        magnitude.rows = magnitude.rows.map { [$0[0], $0[1]] + Array($0[10...]) }
        for point in ["0", "1"] {
            for policy in ["master", "pure", "null"] {
                let bins = magnitude.rows.filter { $0[0] == point && $0[8] == policy }
                XCTAssertFalse(bins.isEmpty)
                let visible = bins.reduce(0) { $0 + Int($1[9])! }
                XCTAssertEqual(String(visible), summary.rows.first { $0[0] == point && $0[6] == policy }![9],
                               "\(point) \(policy)")
                XCTAssertEqual(bins.reduce(0) { $0 + Int($1[7])! }, params)
            }
        }

        // Spectral: a row per matrix and a pooled TOTAL per point; NSS and angles are
        // larger at the larger learning rate.
        let spectral = try csv(out + "/spectral.csv")
        let tensorColumnIndex = spectral.header.firstIndex(of: "tensor")!
        XCTAssertEqual(spectral.rows.map { [$0[0], $0[tensorColumnIndex]] }, [
            ["0", "synth.0.weight"], ["0", "synth.1.weight"], ["0", "TOTAL"],
            ["1", "synth.0.weight"], ["1", "synth.1.weight"], ["1", "TOTAL"],
        ])
        let nss = spectral.header.firstIndex(of: "nss")!, changed = spectral.header.firstIndex(of: "changed")!
        let total0 = spectral.rows[2], total1 = spectral.rows[5]
        XCTAssertLessThan(Double(total0[nss])!, Double(total1[nss])!)
        // The update mask is the master policy's visible set.
        XCTAssertEqual(total1[changed], summary.rows.first { $0[0] == "1" && $0[6] == "master" }![9])
        // TOTAL: parameter-weighted means over the two matrices (1024 and 1536 weights),
        // the largest matrix's angle in the _max columns, each overlap beside α.
        func value(_ row: [String], _ name: String) -> Double { Double(row[spectral.header.firstIndex(of: name)!])! }
        for (first, second, total) in [(spectral.rows[0], spectral.rows[1], total0), (spectral.rows[3], spectral.rows[4], total1)] {
            for name in ["nss", "angle_u_max_deg", "angle_v_max_deg", "principal_overlap", "low_overlap", "energy_top_k",
                         "principal_overlap_magnitude", "low_overlap_magnitude"] {
                let mean = (1024 * value(first, name) + 1536 * value(second, name)) / 2560
                XCTAssertEqual(value(total, name), mean, accuracy: 1e-12 * max(1, abs(mean)), name)
            }
            XCTAssertEqual(value(total, "angle_u_max_deg_max"), max(value(first, "angle_u_max_deg"), value(second, "angle_u_max_deg")))
            XCTAssertEqual(value(total, "angle_v_max_deg_max"), max(value(first, "angle_v_max_deg"), value(second, "angle_v_max_deg")))
            XCTAssertEqual(value(total, "principal_overlap_random"), 0.5)
            XCTAssertEqual(value(total, "low_overlap_random"), 0.5)
            XCTAssertEqual(value(first, "k"), 4)
        }

        let readme = try String(contentsOfFile: out + "/README.md", encoding: .utf8)
        XCTAssertTrue(readme.contains("# Experiment `tiny`"), readme)
        XCTAssertTrue(readme.contains("| lr | fp32 (truth) | master | pure | null (permuted) |"), readme)
        XCTAssertTrue(readme.contains("| lr | NSS | angle (°) | angle max (°) | energy top-k |"), readme)
        XCTAssertTrue(readme.contains("| lr | principal | random |"), readme)
        // What the model builds in is stated before the numbers.
        let built = try XCTUnwrap(readme.range(of: "## Built in by construction"))
        let measured = try XCTUnwrap(readme.range(of: "## What the experiment measures"))
        let headline = try XCTUnwrap(readme.range(of: "## Headline numbers"))
        XCTAssertLessThan(built.lowerBound, measured.lowerBound)
        XCTAssertLessThan(measured.lowerBound, headline.lowerBound)
        XCTAssertTrue(readme.contains("placement off"), readme)
        XCTAssertTrue(readme.contains("rotation 0"), readme)
        // Three tables, each with a row per point.
        XCTAssertEqual(readme.split(separator: "\n").filter { $0.hasPrefix("| 1e-05 |") || $0.hasPrefix("| 0.001 |") }.count, 6)
        let svg = try String(contentsOfFile: out + "/sparsity.svg", encoding: .utf8)
        XCTAssertTrue(svg.contains("<svg"), svg)

        // Deterministic: another thread count and --keep-streams give the same summary.
        let again = path("again")
        let second = try CLIRunner.run(["sweep", experiment, "--out", again, "--threads", "2", "--keep-streams",
                                        "--quiet"], environment: ["TMPDIR": scratch])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(second.stdout, "")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: again + "/summary.csv")),
                       try Data(contentsOf: URL(fileURLWithPath: out + "/summary.csv")))
        XCTAssertEqual(contents(again + "/streams").count, 2)
        // Kept streams are outputs too: a second run needs --force.
        let third = try CLIRunner.run(["sweep", experiment, "--out", path("third"), "--keep-streams", "--quiet"])
        XCTAssertEqual(third.status, 0, third.stderr)
        let streamNames = contents(path("third") + "/streams")
        for name in contents(path("third")) where name != "streams" {
            try FileManager.default.removeItem(atPath: path("third") + "/" + name)
        }
        let refused = try CLIRunner.run(["sweep", experiment, "--out", path("third"), "--keep-streams", "--quiet"])
        XCTAssertEqual(refused.status, 2, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("streams/"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("third") + "/summary.csv"))
        XCTAssertEqual(contents(path("third") + "/streams"), streamNames)
    }

    /// The grid of the placement-x-snr experiment in small: the snr-0 points of both
    /// placements are one stream and one measurement (no signal to place).
    func testKnobGridSharesTheStreamOfAZeroSignal() throws {
        let experiment = try write("""
        {
          "name": "knobs",
          "question": "Do the knobs reach the streams?",
          "stream": { "shapes": ["24x24"], "steps": 3, "lr": 1e-4, "noise_rms": 1e-3, "k": 4 },
          "grid": { "placement": ["off", "in"], "snr": [0, 2] },
          "replay": { "policies": ["master"] },
          "outputs": ["sparsity"]
        }
        """, to: "knobs.json")
        let out = path("knobs")
        let result = try CLIRunner.run(["sweep", experiment, "--out", out, "--keep-streams", "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(contents(out + "/streams").count, 3, "off/0 and in/0 share a stream")
        let summary = try csv(out + "/summary.csv")
        let placement = summary.header.firstIndex(of: "placement")!, snr = summary.header.firstIndex(of: "snr")!
        let visible = summary.header.firstIndex(of: "visible_changed")!
        XCTAssertEqual(summary.rows.map { [$0[placement], $0[snr]] }, [["off", "0"], ["off", "2"], ["in", "0"], ["in", "2"]])
        XCTAssertEqual(summary.rows[0][visible], summary.rows[2][visible])
        XCTAssertNotEqual(summary.rows[1][visible], summary.rows[0][visible])
        let readme = try String(contentsOfFile: out + "/README.md", encoding: .utf8)
        XCTAssertTrue(readme.contains("snr 0: no signal"), readme)
        XCTAssertTrue(readme.contains("placement in:"), readme)
    }

    func testBadExperimentFilesExitTwoNamingTheFileAndKey() throws {
        let valid = try JSONSerialization.jsonObject(with: Data(tinyExperiment.utf8)) as! [String: Any]
        func variant(_ change: (inout [String: Any]) -> Void) throws -> String {
            var object = valid
            change(&object)
            return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        }
        func nested(_ key: String, _ change: @escaping (inout [String: Any]) -> Void) -> (inout [String: Any]) -> Void {
            { object in
                var inner = object[key] as! [String: Any]
                change(&inner)
                object[key] = inner
            }
        }
        let cases: [(String, String)] = [
            (try variant { $0["colour"] = "red" }, "unknown key \"colour\""),
            (try variant(nested("stream") { $0["lr_schedule"] = "cosine" }), "unknown key \"lr_schedule\""),
            (try variant(nested("replay") { $0["dtpye"] = "bf16" }), "unknown key \"dtpye\""),
            (try variant { $0.removeValue(forKey: "stream") }, "missing required key \"stream\""),
            (try variant(nested("stream") { $0.removeValue(forKey: "steps") }), "missing required key \"stream.steps\""),
            (try variant { $0.removeValue(forKey: "outputs") }, "missing required key \"outputs\""),
            (try variant { $0.removeValue(forKey: "name") }, "missing required key \"name\""),
            (try variant { $0["grid"] = ["lr": [1e-5, -1e-3]] }, "\"grid.lr\""),
            (try variant { $0["grid"] = ["lr": []] }, "\"grid.lr\""),
            (try variant { $0["grid"] = ["lr": "1e-5"] }, "\"grid.lr\""),
            (try variant { $0["grid"] = ["dtype": ["bf16", "bf17"]] }, "unknown dtype \"bf17\""),
            (try variant { $0["grid"] = ["profile": ["rl", "ppo"]] }, "unknown profile \"ppo\""),
            (try variant { $0["grid"] = ["steps": [5, 2.5]] }, "\"grid.steps\""),
            (try variant { $0["grid"] = ["lr": [1e-5, 1e-5]] }, "twice"),
            (try variant { $0["grid"] = ["momentum": [0.9]] }, "unknown grid axis \"momentum\""),
            (try variant { $0["grid"] = [String: Any]() }, "\"grid\" must name at least one axis"),
            (try variant(nested("stream") { $0["shapes"] = ["32x"] }), "invalid shape \"32x\""),
            (try variant { $0["outputs"] = ["sparsity", "heatmap"] }, "unknown output \"heatmap\""),
            (try variant { $0.removeValue(forKey: "spectral") }, "needs a \"spectral\" object"),
            (try variant(nested("spectral") { $0["alpha"] = 1.5 }), "\"spectral.alpha\""),
            (try variant(nested("replay") { $0["policies"] = ["master", "bf16"] }), "unknown policy \"bf16\""),
            (try variant(nested("stream") { $0["snr_db"] = 3 }), "unknown key \"snr_db\""),
            (try variant(nested("stream") { $0["placement"] = "inside" }), "unknown placement \"inside\""),
            (try variant(nested("stream") { $0["snr"] = -1 }), "\"stream.snr\""),
            (try variant(nested("stream") { $0["rotation"] = 1.5 }), "\"stream.rotation\""),
            (try variant(nested("stream") { $0["row_spread"] = "wide" }), "\"stream.row_spread\""),
            (try variant(nested("stream") { $0["k"] = 32 }), "\"stream.k\""),
            (try variant { $0["grid"] = ["rotation": [0, 0.5, 2]] }, "\"grid.rotation\""),
            (try variant { $0["grid"] = ["k": [4, 40]] }, "\"grid.k\""),
            (try variant { $0["grid"] = ["placement": ["off", "sideways"]] }, "unknown placement \"sideways\""),
            (try variant { $0["grid"] = ["base_tail": [0, -1]] }, "\"grid.base_tail\""),
            (try variant { $0["grid"] = ["rotation": [0, 0.5]]; $0["stream"] = ["shapes": ["32x32"], "steps": 5, "lr": 1e-5, "placement": "random"] },
             "\"grid.rotation\" needs placement off or in"),
            (try variant { $0["stream"] = ["shapes": ["32x32"], "steps": 5, "lr": 1e-5] }, "needs \"profile\""),
            (try variant(nested("spectral") { $0["k"] = 4 }), "\"stream.k\""),
            ("{\"name\": \"tiny\",", "not valid JSON"),
            ("[1, 2]", "must be a JSON object"),
        ]
        for (index, (text, expected)) in cases.enumerated() {
            let file = try write(text, to: "bad\(index).json")
            let out = path("out\(index)")
            let result = try CLIRunner.run(["sweep", file, "--out", out])
            XCTAssertEqual(result.status, 2, "\(expected): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(file), "\(expected): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(expected), "\(expected): \(result.stderr)")
            XCTAssertFalse(result.stderr.contains("Backtrace"), result.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(expected): output directory created")
        }
    }

    func testUsageErrorsExitTwo() throws {
        let experiment = try write(tinyExperiment, to: "tiny.json")
        XCTAssertEqual(try CLIRunner.run(["sweep", experiment]).status, 2)                         // no --out
        XCTAssertEqual(try CLIRunner.run(["sweep", "--out", path("o")]).status, 2)                 // no file
        XCTAssertEqual(try CLIRunner.run(["sweep", path("missing.json"), "--out", path("o")]).status, 2)
        XCTAssertEqual(try CLIRunner.run(["sweep", experiment, "--out", path("o"), "--threads", "0"]).status, 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("o")))
        let file = try write("not a directory", to: "plain")
        let notDirectory = try CLIRunner.run(["sweep", experiment, "--out", file])
        XCTAssertEqual(notDirectory.status, 2, notDirectory.stderr)
        XCTAssertTrue(notDirectory.stderr.contains("not a directory"), notDirectory.stderr)
        XCTAssertFalse(notDirectory.stderr.contains("synth"), "refused before any work: \(notDirectory.stderr)")
    }

    func testExistingOutputNeedsForce() throws {
        let experiment = try write(tinyExperiment.replacingOccurrences(of: "\"curve\", \"magnitude\", \"spectral\"",
                                                                       with: "\"curve\""), to: "tiny.json")
        let out = path("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: out + "/summary.csv"))
        let refused = try CLIRunner.run(["sweep", experiment, "--out", out, "--quiet"])
        XCTAssertEqual(refused.status, 2, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("--force"), refused.stderr)
        XCTAssertEqual(try String(contentsOfFile: out + "/summary.csv", encoding: .utf8), "keep me")
        XCTAssertEqual(contents(out), ["summary.csv"], "nothing else may be written")

        let forced = try CLIRunner.run(["sweep", experiment, "--out", out, "--quiet", "--force"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertTrue(try String(contentsOfFile: out + "/summary.csv", encoding: .utf8).hasPrefix("point,profile,"))
        XCTAssertEqual(contents(out), ["README.md", "curve.csv", "sparsity.svg", "summary.csv", "visible_vs_step.svg"])
    }
}
