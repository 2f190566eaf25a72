import Foundation
import PrecLabFiles
import PrecLabSupport
import PrecLabTestFixtures
import XCTest

/// Outputs of a command as one set: inputs (index and shards included) never
/// replaced, every output path checked against every other and the plot names before
/// any work, and all files or none written.
final class OutputSetCLITests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws { directory = try CLIRunner.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func listing(_ name: String = "") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: name.isEmpty ? directory.path : path(name))) ?? []).sorted()
    }

    private func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    /// A sharded BASE (index + one shard) and two single-file runs.
    private func consistencyInputs() throws -> (base: String, runs: [String]) {
        let base = path("base")
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try Fixtures.writeSharded(base, [[FixtureTensor(name: "w", dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 4])]])
        try Fixtures.write(path("r1.safetensors"), [FixtureTensor(name: "w", dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 5])])
        try Fixtures.write(path("r2.safetensors"), [FixtureTensor(name: "w", dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 6])])
        return (base, [path("r1.safetensors"), path("r2.safetensors")])
    }

    /// Regression: `consistency --force --json` must not replace BASE's index (or shard).
    func testConsistencyNeverReplacesTheBaseIndexOrShards() throws {
        let (base, runs) = try consistencyInputs()
        for file in ["model.safetensors.index.json", "model-00001-of-00001.safetensors"] {
            let target = base + "/" + file
            let before = try bytes(target)
            let result = try CLIRunner.run(["consistency", "--base", base] + runs + ["--json", target, "--force", "--quiet"])
            XCTAssertEqual(result.status, 2, result.stderr)
            XCTAssertTrue(result.stderr.contains("refusing to overwrite an input file"), result.stderr)
            XCTAssertEqual(try bytes(target), before, file)
        }
    }

    /// A stream without BASE of one 2x2 tensor, and a sharded checkpoint with its base.
    private func replayInputs() throws -> (stream: String, base: String) {
        let stream = path("nobase.bin")
        let writer = try UpdateStreamWriter(path: stream, tensors: [UpdateStreamTensor(name: "w", shape: [2, 2], dtype: "BF16")],
                                            metadata: [])
        var weights: [Float] = [1, 2, 3, 4]
        for step in UInt64(1)...3 {
            let update: [Float] = [0.25, 0, 0, -0.5]
            for index in weights.indices { weights[index] += update[index] }
            try update.withUnsafeBufferPointer { try writer.writeStep(step: step, learningRate: 1e-3, values: $0) }
        }
        try weights.withUnsafeBufferPointer { try writer.writeFinal(values: $0) }
        try writer.close()
        let base = path("base")
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try Fixtures.writeSharded(base, [[FixtureTensor(name: "w", dtype: .f32, shape: [2, 2], values: [1, 2, 3, 4])]])
        return (stream, base)
    }

    /// Regression: replay must protect every file of `--base`, shards included.
    func testReplayNeverReplacesTheBaseShards() throws {
        let (stream, base) = try replayInputs()
        let ok = try CLIRunner.run(["replay", stream, "--base", base, "--quiet", "--json", path("ok.json")])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        for file in ["model-00001-of-00001.safetensors", "model.safetensors.index.json"] {
            let target = base + "/" + file
            let before = try bytes(target)
            for option in ["--json", "--csv"] {
                let result = try CLIRunner.run(["replay", stream, "--base", base, "--quiet", option, target, "--force"])
                XCTAssertEqual(result.status, 2, "\(option) \(file): \(result.stderr)")
                XCTAssertEqual(try bytes(target), before, file)
            }
        }
    }

    /// synth -o never replaces a file of its `--base` checkpoint either.
    func testSynthNeverReplacesTheBaseShards() throws {
        let (_, base) = try replayInputs()
        for file in ["model-00001-of-00001.safetensors", "model.safetensors.index.json"] {
            let target = base + "/" + file
            let before = try bytes(target)
            let result = try CLIRunner.run(["synth", "-o", target, "--base", base, "--steps", "1", "--lr", "1e-3",
                                            "--profile", "rl", "--force", "--quiet"])
            XCTAssertEqual(result.status, 2, "\(file): \(result.stderr)")
            XCTAssertEqual(try bytes(target), before, file)
        }
    }

    /// `--json a --csv a`, two spellings of one file, and an output that is one of the
    /// plot files: usage errors before anything is written.
    func testCollidingOutputsAreUsageErrorsAndWriteNothing() throws {
        let (stream, base) = try replayInputs()
        let cases: [[String]] = [
            ["--json", path("a"), "--csv", path("a")],
            ["--json", path("a"), "--csv", path("x/../a")],
            ["--plots", path("P"), "--json", path("P/visible_per_step.svg")],
            ["--plots", path("P"), "--csv", path("P") + "//visibility_histogram.svg", "--force"],
        ]
        for arguments in cases {
            let result = try CLIRunner.run(["replay", stream, "--base", base, "--quiet"] + arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertEqual(listing(), ["base", "nobase.bin"], "\(arguments)")
        }
        // compare: a JSON named like one of its plots.
        try Fixtures.write(path("t.safetensors"), [FixtureTensor(name: "w", dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 5])])
        let compare = try CLIRunner.run(["compare", base, path("t.safetensors"), "--quiet", "--plots", path("P"),
                                         "--json", path("P/singular_values.svg")])
        XCTAssertEqual(compare.status, 2, compare.stderr)
        XCTAssertTrue(compare.stderr.contains("--json") && compare.stderr.contains("singular_values.svg"), compare.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("P")))
    }

    /// `--plots` naming a regular file, or a CSV in a folder that does not exist: refused
    /// before the JSON (or anything else) is written.
    func testUnwritableMembersStopTheWholeSet() throws {
        let (stream, base) = try replayInputs()
        try "keep".write(toFile: path("file"), atomically: true, encoding: .utf8)
        let plotsOnFile = try CLIRunner.run(["replay", stream, "--base", base, "--quiet", "--json", path("b.json"),
                                             "--plots", path("file")])
        XCTAssertEqual(plotsOnFile.status, 2, plotsOnFile.stderr)
        let missingFolder = try CLIRunner.run(["replay", stream, "--base", base, "--quiet", "--json", path("b.json"),
                                               "--csv", path("nodir/b.csv")])
        XCTAssertEqual(missingFolder.status, 2, missingFolder.stderr)
        XCTAssertTrue(missingFolder.stderr.contains("nodir/b.csv"), missingFolder.stderr)
        let (consistencyBase, runs) = (base, [path("r1.safetensors"), path("r2.safetensors")])
        try Fixtures.write(runs[0], [FixtureTensor(name: "w", dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 5])])
        try Fixtures.write(runs[1], [FixtureTensor(name: "w", dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 6])])
        let consistency = try CLIRunner.run(["consistency", "--base", consistencyBase] + runs
                                            + ["--quiet", "--json", path("b.json"), "--plots", path("file")])
        XCTAssertEqual(consistency.status, 2, consistency.stderr)
        let compare = try CLIRunner.run(["compare", base, runs[0], "--quiet", "--json", path("b.json"),
                                         "--plots", path("file")])
        XCTAssertEqual(compare.status, 2, compare.stderr)
        XCTAssertEqual(listing(), ["base", "file", "nobase.bin", "r1.safetensors", "r2.safetensors"])
        XCTAssertEqual(try String(contentsOfFile: path("file"), encoding: .utf8), "keep")
    }

    /// The same option is worded the same way by every command.
    func testOneMessagePerMistake() throws {
        let (stream, base) = try replayInputs()
        let replay = try CLIRunner.run(["replay", stream, "--base", base, "--spectral", "--alpha", "1.5"])
        let compare = try CLIRunner.run(["compare", base, base, "--alpha", "1.5"])
        XCTAssertEqual(replay.status, 2)
        XCTAssertEqual(compare.status, 2)
        let message = "invalid value '1.5' for --alpha (expected a number in [0, 1])"
        XCTAssertEqual(replay.stderr, "preclab replay: error: \(message)\n")
        XCTAssertEqual(compare.stderr, "preclab compare: error: \(message)\n")
        let progress = try CLIRunner.run(["compare", base, base, "--progress", "loud"])
        XCTAssertEqual(progress.status, 2)
        XCTAssertTrue(progress.stderr.hasPrefix("preclab compare: error: invalid value 'loud' for --progress"), progress.stderr)
    }

    /// stderr is not a terminal here: the default progress prints nothing, `plain` a
    /// line per stage.
    func testProgressIsSilentOffTerminalAndPlainOnRequest() throws {
        let (stream, base) = try replayInputs()
        let quiet = try CLIRunner.run(["replay", stream, "--base", base, "--spectral", "--k", "1", "--rank", "1"])
        XCTAssertEqual(quiet.status, 0, quiet.stderr)
        XCTAssertFalse(quiet.stderr.contains("preclab replay: replay"), quiet.stderr)
        let plain = try CLIRunner.run(["replay", stream, "--base", base, "--spectral", "--k", "1", "--rank", "1",
                                       "--progress", "plain"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        let lines = plain.stderr.split(separator: "\n").filter { $0.hasPrefix("preclab replay: ") && !$0.contains("warning") }
        XCTAssertEqual(lines, ["preclab replay: replay", "preclab replay: spectral"])
        let cast = try CLIRunner.run(["cast", base, path("c.safetensors"), "--dtype", "bf16"])
        XCTAssertEqual(cast.status, 0, cast.stderr)
        XCTAssertEqual(cast.stderr, "")
    }
}
