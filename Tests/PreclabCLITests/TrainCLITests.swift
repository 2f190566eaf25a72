import Foundation
import PrecLabFiles
import PrecLabSupport
import XCTest

/// `preclab train` end to end on a tiny network (2-bit task, hidden 8,8).
final class TrainCLITests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = try CLIRunner.temporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    let tiny = ["--bits", "2", "--hidden", "8,8", "--batch", "16", "--eval-every", "0"]

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Every option the command accepts is documented in `preclab help train`.
    func testHelpDocumentsEveryOption() throws {
        let result = try CLIRunner.run(["help", "train"])
        XCTAssertEqual(result.status, 0)
        let options = ["--method", "--output", "-o", "--base", "--bits", "--hidden", "--activation", "--steps",
                       "--batch", "--group", "--kl", "--lr", "--lr-relative", "--warmup", "--adam", "--weight-decay",
                       "--clip", "--storage", "--dtype", "--rounding", "--saturate", "--flush-subnormals",
                       "--record-tensors", "--every", "--no-stream", "--compare-replay", "--eval-every", "--seed",
                       "--threads", "--quiet", "--force"]
        for option in options {
            XCTAssertTrue(result.stdout.contains(option + " ") || result.stdout.contains(option + ","), option)
        }
        // And every documented option is accepted (an unknown one is a usage error).
        let unknown = try CLIRunner.run(["train", "--method", "pretrain", "-o", path("x"), "--no-such-option"])
        XCTAssertEqual(unknown.status, 2)
    }

    func testPretrainThenRLWritesCheckpointsStreamAndLogs() throws {
        let pretrain = try CLIRunner.run(["train", "--method", "pretrain", "--steps", "20", "-o", path("pre"),
                                          "--quiet"] + tiny)
        XCTAssertEqual(pretrain.status, 0, pretrain.stderr)
        let rl = try CLIRunner.run(["train", "--method", "rl", "--base", path("pre/final.safetensors"),
                                    "--steps", "6", "--group", "4", "--kl", "0.1", "--storage", "master",
                                    "--every", "4", "-o", path("rl"), "--batch", "16"])
        XCTAssertEqual(rl.status, 0, rl.stderr)
        XCTAssertTrue(rl.stdout.contains("eval accuracy"), rl.stdout)
        for name in ["base.safetensors", "base.bf16.safetensors", "final.safetensors", "final.bf16.safetensors",
                     "updates.bin", "log.csv", "summary.json", "reward.svg", "loss.svg", "updates.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: path("rl/" + name)), name)
        }
        // Steps 4 and 6 are recorded (every 4, the last always), with BASE and FINL.
        let reader = try UpdateStreamReader(path: path("rl/updates.bin"))
        let summary = try reader.summarize()
        XCTAssertEqual(summary.stepCount, 2)
        XCTAssertEqual(summary.firstStep, 4)
        XCTAssertEqual(summary.lastStep, 6)
        XCTAssertTrue(summary.hasFinal)
        let log = try String(contentsOfFile: path("rl/log.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(log.count, 7)
        XCTAssertEqual(String(log[0]), "step,lr,loss,reward,accuracy,eval_accuracy,kl,grad_norm,update_rms_ratio,vanished_fraction")
        let json = try JSONParser.parse(String(contentsOfFile: path("rl/summary.json"), encoding: .utf8))
        XCTAssertEqual(json.objectValue?["method"]?.stringValue, "rl")
        XCTAssertEqual(json.objectValue?["storage"]?.stringValue, "master")
        // rl's default learning rate is 5e-5 x the RMS of the base's weight matrices.
        let rms = try XCTUnwrap(json.objectValue?["start_weight_rms"]?.doubleValue)
        let lr = try XCTUnwrap(json.objectValue?["lr"]?.doubleValue)
        XCTAssertEqual(lr, 5e-5 * rms, accuracy: 1e-12 * lr)
        XCTAssertEqual(json.objectValue?["lr_relative"]?.doubleValue ?? 0, 5e-5, accuracy: 1e-15)
        // The replay of the recorded stream reproduces FINL.
        let replay = try CLIRunner.run(["replay", path("rl/updates.bin"), "--quiet"])
        XCTAssertEqual(replay.status, 0, replay.stderr)
    }

    func testSameSeedGivesSameBytes() throws {
        for name in ["a", "b"] {
            let result = try CLIRunner.run(["train", "--method", "pretrain", "--steps", "5", "--storage", "stochastic",
                                            "-o", path(name), "--quiet", "--seed", "3"] + tiny,
                                           environment: ["PRECLAB_THREADS": name == "a" ? "1" : "2"])
            XCTAssertEqual(result.status, 0, result.stderr)
        }
        for file in ["updates.bin", "final.bf16.safetensors", "log.csv"] {
            XCTAssertEqual(FileManager.default.contents(atPath: path("a/" + file)),
                           FileManager.default.contents(atPath: path("b/" + file)), file)
        }
    }

    func testCompareReplayReportsBothLoops() throws {
        XCTAssertEqual(try CLIRunner.run(["train", "--method", "pretrain", "--steps", "20", "-o", path("pre"),
                                          "--quiet"] + tiny).status, 0)
        let result = try CLIRunner.run(["train", "--method", "sft", "--base", path("pre/final.bf16.safetensors"),
                                        "--steps", "5", "--storage", "pure", "--compare-replay", "-o", path("cmp"),
                                        "--batch", "16"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("closed loop"), result.stdout)
        let json = try JSONParser.parse(String(contentsOfFile: path("cmp/compare-replay.json"), encoding: .utf8))
        XCTAssertEqual(json.objectValue?["closed_reproduced_by_replay"]?.boolValue, true)
        XCTAssertNotNil(json.objectValue?["open_visible_fraction"]?.doubleValue)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("cmp/closed/updates.bin")))
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("cmp/fp32/updates.bin")))
    }

    func testUsageAndDataErrors() throws {
        let cases: [([String], Int32)] = [
            (["train", "-o", path("u")], 2),                                                  // no --method
            (["train", "--method", "rl", "-o", path("u")], 2),                               // rl needs --base
            (["train", "--method", "pretrain"], 2),                                          // no -o
            (["train", "--method", "pretrain", "-o", path("u"), "--lr", "1", "--lr-relative", "1"], 2),
            (["train", "--method", "pretrain", "-o", path("u"), "--storage", "bogus"], 2),
            (["train", "--method", "pretrain", "-o", path("u"), "--compare-replay"], 2),     // fp32: nothing to compare
            (["train", "--method", "pretrain", "-o", path("u"), "--kl", "0.1"], 2),          // --kl is rl-only
            (["train", "--method", "pretrain", "-o", path("u"), "--hidden", "8"], 2),        // at least two layers
            (["train", "--method", "pretrain", "-o", path("u"), "--bits", "13"], 2),
            (["train", "--method", "pretrain", "-o", path("u"), "--record-tensors", "nomatch"], 2),
            (["train", "--method", "sft", "--base", path("missing.safetensors"), "-o", path("u")], 1),
        ]
        for (arguments, status) in cases {
            let result = try CLIRunner.run(arguments)
            XCTAssertEqual(result.status, status, arguments.joined(separator: " ") + ": " + result.stderr)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("u/updates.bin")))
        // An existing output is not replaced without --force.
        XCTAssertEqual(try CLIRunner.run(["train", "--method", "pretrain", "--steps", "2", "-o", path("o"), "--quiet"] + tiny).status, 0)
        let again = try CLIRunner.run(["train", "--method", "pretrain", "--steps", "2", "-o", path("o"), "--quiet"] + tiny)
        XCTAssertNotEqual(again.status, 0)
        XCTAssertEqual(try CLIRunner.run(["train", "--method", "pretrain", "--steps", "2", "-o", path("o"), "--quiet",
                                          "--force"] + tiny).status, 0)
    }
}
