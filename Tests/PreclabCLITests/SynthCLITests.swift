import Foundation
import PrecLabFiles
import XCTest

final class SynthCLITests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws { directory = try CLIRunner.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func testWritesAStreamTheReaderAccepts() throws {
        let output = path("rl.bin")
        let result = try CLIRunner.run(["synth", "-o", output, "--shape", "24x16,16x20", "--steps", "5",
                                        "--lr", "1e-5", "--profile", "rl", "--seed", "3"],
                                       environment: ["PRECLAB_THREADS": "1"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("wrote \(output)"), result.stdout)
        let reader = try UpdateStreamReader(path: output)
        XCTAssertEqual(reader.header.tensors.map(\.shape), [[24, 16], [16, 20]])
        let summary = try reader.summarize()
        XCTAssertEqual(summary.stepCount, 5)
        XCTAssertEqual(summary.baseStep, 0)
        XCTAssertEqual(summary.finalStep, 5)
        let metadata = Dictionary(uniqueKeysWithValues: reader.header.metadata.map { ($0.key, $0.value) })
        XCTAssertEqual(metadata["profile"], "rl")
        XCTAssertEqual(metadata["seed"], "3")
        // Default k = min(16, min(m, n)/2) = 8; rl places the signal outside, so r = min(8, p − k) = 8.
        XCTAssertEqual(metadata["principal_k"], "8,8")
        XCTAssertEqual(metadata["signal_rank"], "8,8")
        XCTAssertEqual(metadata["placement"], "off")
        XCTAssertEqual(metadata["snr"], "0.1")
        XCTAssertEqual(metadata["rotation"], "0.0")

        let inspect = try CLIRunner.run(["inspect", output])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("FINL: present (step 5)"), inspect.stdout)

        // The same command with another thread count gives the same bytes.
        let again = path("rl-again.bin")
        let second = try CLIRunner.run(["synth", "-o", again, "--shape", "24x16,16x20", "--steps", "5",
                                        "--lr", "1e-5", "--profile", "rl", "--seed", "3", "--threads", "2"])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: output)),
                       try Data(contentsOf: URL(fileURLWithPath: again)))
    }

    func testUsageErrorsExitTwoAndWriteNothing() throws {
        let output = path("x.bin")
        let cases: [[String]] = [
            ["--shape", "24x16", "--steps", "5", "--lr", "1e-5"],                        // no profile or placement
            ["--shape", "24x16", "--steps", "5", "--lr", "1e-5", "--snr", "2"],           // knobs need a placement
            ["--shape", "24x16", "--steps", "5", "--lr", "1e-5", "--placement", "inside"],
            ["--shape", "24x16", "--steps", "5", "--lr", "1e-5", "--placement", "in", "--rotation", "1.5"],
            ["--shape", "24x16", "--steps", "5", "--lr", "1e-5", "--placement", "random", "--rotation", "0.5"],
            ["--shape", "24x16", "--steps", "5", "--lr", "1e-5", "--placement", "in", "--snr", "-1"],
            ["--shape", "24x16", "--steps", "5", "--lr", "1e-5", "--placement", "in", "--row-spread", "nan"],
            ["--shape", "24x16", "--steps", "5", "--lr", "1e-5", "--profile", "rl", "--base-tail", "9"],
            ["--shape", "24x16", "--steps", "5", "--lr", "1e-5", "--profile", "rl", "--signal-rms", "1e-3"],
            ["--shape", "24x16", "--steps", "5", "--profile", "rl"],                      // no lr
            ["--shape", "24x16", "--lr", "1e-5", "--profile", "rl"],                      // no steps
            ["--shape", "24x", "--steps", "5", "--lr", "1e-5", "--profile", "rl"],
            ["--shape", "1x16", "--steps", "5", "--lr", "1e-5", "--profile", "rl"],
            ["--shape", "24x16", "--steps", "0", "--lr", "1e-5", "--profile", "rl"],
            ["--shape", "24x16", "--steps", "5", "--lr", "-1", "--profile", "rl"],
            ["--shape", "24x16", "--steps", "5", "--lr", "1e-5", "--profile", "ppo"],
            ["--shape", "24x16", "--steps", "5", "--lr", "1e-5", "--profile", "rl", "--adam", "0.9,0.999"],
            ["--shape", "24x16", "--steps", "5", "--lr", "1e-5", "--profile", "rl", "--k", "16"],
            ["--shape", "24x16", "--steps", "5", "--lr", "1e-5", "--profile", "rl", "--tensors", "w"],
        ]
        for arguments in cases {
            let result = try CLIRunner.run(["synth", "-o", output] + arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertFalse(result.stderr.contains("Backtrace"), result.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: output), "\(arguments)")
        }
        XCTAssertEqual(try CLIRunner.run(["synth", "--shape", "8x8", "--steps", "1", "--lr", "0",
                                          "--profile", "noise"]).status, 2)  // no -o
    }

    /// The knobs override the preset, and the metadata records what was used.
    func testKnobsOverrideThePresetAndAreRecorded() throws {
        let output = path("knobs.bin")
        let result = try CLIRunner.run(["synth", "-o", output, "--shape", "24x16", "--steps", "2", "--lr", "1e-5",
                                        "--profile", "sft", "--snr", "0.5", "--rotation", "0.25", "--k", "4",
                                        "--row-spread", "0.5", "--col-spread", "0.2", "--base-tail", "0.3",
                                        "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let reader = try UpdateStreamReader(path: output)
        let metadata = Dictionary(uniqueKeysWithValues: reader.header.metadata.map { ($0.key, $0.value) })
        XCTAssertEqual(metadata["profile"], "sft")
        XCTAssertEqual(metadata["placement"], "in")          // from the preset
        XCTAssertEqual(metadata["noise_rms"], "0.0005")      // from the preset
        XCTAssertEqual(metadata["snr"], "0.5")
        XCTAssertEqual(metadata["signal_rms"], "0.00025")
        XCTAssertEqual(metadata["rotation"], "0.25")
        XCTAssertEqual(metadata["principal_k"], "4")
        XCTAssertEqual(metadata["signal_rank"], "4")         // min(8, k, p − k) with rotation
        XCTAssertEqual(metadata["row_spread"], "0.5")
        XCTAssertEqual(metadata["col_spread"], "0.2")
        XCTAssertEqual(metadata["base_tail"], "0.3")
        XCTAssertEqual(metadata["synth_model"], "2")
    }

    func testExistingOutputNeedsForce() throws {
        let output = path("kept.bin")
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: output))
        let arguments = ["synth", "-o", output, "--shape", "8x8", "--steps", "2", "--lr", "1e-5", "--profile", "sft"]
        let refused = try CLIRunner.run(arguments)
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.stderr.contains("--force"), refused.stderr)
        XCTAssertEqual(try String(contentsOfFile: output, encoding: .utf8), "keep me")
        XCTAssertEqual(try CLIRunner.run(arguments + ["--force"]).status, 0)
        XCTAssertEqual(try UpdateStreamReader(path: output).summarize().stepCount, 2)
    }

    func testBaseFromACheckpoint() throws {
        // One F32 matrix of 6 × 4 values 0.01·(i − 11.5), and a 1-D bias that is skipped.
        let values = (0 ..< 24).map { Float(0.01) * (Float($0) - 11.5) }
        var data = values.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
        data += [UInt8](repeating: 0, count: 8)
        var header = Array(#"{"proj.weight":{"dtype":"F32","shape":[6,4],"data_offsets":[0,96]},"proj.bias":{"dtype":"F32","shape":[2],"data_offsets":[96,104]}}"#.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        let checkpoint = path("model.safetensors")
        try Data(withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header + data)
            .write(to: URL(fileURLWithPath: checkpoint))

        let output = path("ckpt.bin")
        let result = try CLIRunner.run(["synth", "-o", output, "--base", checkpoint, "--steps", "3",
                                        "--lr", "1e-4", "--profile", "sft"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let reader = try UpdateStreamReader(path: output)
        XCTAssertEqual(reader.header.tensors.map(\.name), ["proj.weight"])
        XCTAssertEqual(reader.header.tensors.map(\.dtype), ["F32"])
        var base: [Float] = []
        try reader.forEachRecord { if $0.kind == .base { base = Array($0.values) } }
        XCTAssertEqual(base.map(\.bitPattern), values.map(\.bitPattern))

        // The checkpoint may never be the output; a broken checkpoint is bad data.
        let clobber = try CLIRunner.run(["synth", "-o", checkpoint, "--base", checkpoint, "--steps", "1",
                                         "--lr", "1e-4", "--profile", "rl", "--force"])
        XCTAssertEqual(clobber.status, 2, clobber.stderr)
        let broken = path("broken.safetensors")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: broken))
        let bad = try CLIRunner.run(["synth", "-o", path("never.bin"), "--base", broken, "--steps", "1",
                                     "--lr", "1e-4", "--profile", "rl"])
        XCTAssertEqual(bad.status, 1, bad.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("never.bin")))
    }
}
