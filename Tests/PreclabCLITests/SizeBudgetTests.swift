import Foundation
import PrecLabFiles
import XCTest

/// Issue 11, sizes: what an input or option asks for is computed before it is
/// allocated or written, and refused with exit 1 and the numbers when the machine
/// (here held down with PRECLAB_DISK_LIMIT / PRECLAB_MEMORY_LIMIT) cannot take it.
final class SizeBudgetTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws { directory = try CLIRunner.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
    private func contents() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
    }

    private func synth(_ output: String, shape: String = "8x8", steps: String = "2") -> [String] {
        ["synth", "-o", output, "--shape", shape, "--steps", steps, "--lr", "1e-4", "--profile", "noise", "--quiet"]
    }

    func testSynthStepsHaveTheSweepBound() throws {
        for steps in ["99999999999999", "10001"] {
            let result = try CLIRunner.run(synth(path("s.bin"), steps: steps))
            XCTAssertEqual(result.status, 2, "\(steps): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("invalid value '\(steps)' for --steps (expected an integer in [1, 10000])"), result.stderr)
            XCTAssertEqual(contents(), [])
        }
    }

    func testSynthRefusesAStreamLargerThanTheFreeDisk() throws {
        // 8x8, 2 steps: 4 records of 32 + 256 + 8 bytes, 16 bytes of preamble and a
        // 4352-byte header allowance = 5552 bytes.
        let refused = try CLIRunner.run(synth(path("s.bin")), environment: ["PRECLAB_DISK_LIMIT": "5551"])
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("needs 5552 bytes (5.4 KiB) of disk, but only 5551 bytes (5.4 KiB) is free"),
                      refused.stderr)
        XCTAssertEqual(contents(), [])
        let fits = try CLIRunner.run(synth(path("s.bin")), environment: ["PRECLAB_DISK_LIMIT": "5552"])
        XCTAssertEqual(fits.status, 0, fits.stderr)
        // A device takes no disk: the limit does not apply.
        let device = try CLIRunner.run(synth("/dev/null"), environment: ["PRECLAB_DISK_LIMIT": "0"])
        XCTAssertEqual(device.status, 0, device.stderr)
    }

    func testSynthRefusesWhatMemoryCannotHold() throws {
        // 512x512: 262144 weights x (24 + 32) bytes = 14680064 bytes.
        let refused = try CLIRunner.run(synth(path("s.bin"), shape: "512x512"),
                                        environment: ["PRECLAB_MEMORY_LIMIT": "14680063"])
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("needs 14680064 bytes (14.0 MiB) of memory"), refused.stderr)
        XCTAssertEqual(contents(), [])
    }

    func testSynthFromACheckpointChecksMemoryBeforeDecoding() throws {
        let base = path("base.safetensors")
        try SafetensorsWriter.write(to: base, tensors: [
            (SafetensorsTensorSpec(name: "w", dtype: .f32, shape: [64, 64]), [UInt8](repeating: 0, count: 64 * 64 * 4)),
        ])
        // 4096 weights x (24 + 32) bytes of state and work, plus 4 bytes of decoded base.
        let arguments = ["synth", "-o", path("s.bin"), "--base", base, "--steps", "2", "--lr", "1e-4",
                         "--profile", "noise", "--quiet"]
        let refused = try CLIRunner.run(arguments, environment: ["PRECLAB_MEMORY_LIMIT": "245759"])
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("simulating from 4096 base weights needs 245760 bytes"), refused.stderr)
        XCTAssertEqual(contents(), ["base.safetensors"])
    }

    func testCastRefusesAnOutputLargerThanTheFreeDisk() throws {
        let input = path("in.safetensors")
        try SafetensorsWriter.write(to: input, tensors: [
            (SafetensorsTensorSpec(name: "w", dtype: .f32, shape: [1024]), [UInt8](repeating: 0, count: 4096)),
        ])
        let result = try CLIRunner.run(["cast", input, path("out.safetensors"), "--dtype", "bf16"],
                                       environment: ["PRECLAB_DISK_LIMIT": "2048"])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("of disk, but only 2048 bytes (2.0 KiB) is free"), result.stderr)
        XCTAssertEqual(contents(), ["in.safetensors"])
    }

    func testCastOfAFileWithoutFloatingTensorsIsBadData() throws {
        let input = path("ints.safetensors")
        try SafetensorsWriter.write(to: input, tensors: [
            (SafetensorsTensorSpec(name: "ids", dtype: .i64, shape: [2]), [UInt8](repeating: 1, count: 16)),
        ])
        let result = try CLIRunner.run(["cast", input, path("out.safetensors"), "--dtype", "bf16"])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.hasPrefix("preclab cast: error: \(input) has no floating tensor to cast"), result.stderr)
        // A pattern that matches nothing stays a usage error.
        let floats = path("f.safetensors")
        try SafetensorsWriter.write(to: floats, tensors: [
            (SafetensorsTensorSpec(name: "w", dtype: .f32, shape: [1]), [0, 0, 0, 0]),
        ])
        let unmatched = try CLIRunner.run(["cast", floats, path("out.safetensors"), "--dtype", "bf16", "--tensors", "nomatch"])
        XCTAssertEqual(unmatched.status, 2, unmatched.stderr)
        XCTAssertTrue(unmatched.stderr.hasPrefix("preclab cast: error: the tensor pattern matched none of the 1 floating tensors"), unmatched.stderr)
    }

    /// replay, compare and consistency compute their state from the inputs' sizes and
    /// refuse, before allocating it, what the memory available cannot hold; one byte
    /// more than the estimate lets the same run through.
    func testReplayCompareAndConsistencyRefuseWhatMemoryCannotHold() throws {
        let stream = path("s.bin")
        XCTAssertEqual(try CLIRunner.run(synth(stream, shape: "16x16", steps: "3")).status, 0)
        // 256 bf16 weights, all five policies: (W0 4 + truth 4 + stored base 2 + analysis 1
        // + pure 2 + stochastic 2 + Kahan 4) bytes + 1 bit each = 19.125 * 256 = 4896 bytes.
        let refused = try CLIRunner.run(["replay", stream, "--quiet"], environment: ["PRECLAB_MEMORY_LIMIT": "4895"])
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("replaying 256 weights under fp32,master,pure,stochastic,kahan needs 4896 bytes"),
                      refused.stderr)
        let fits = try CLIRunner.run(["replay", stream, "--quiet"], environment: ["PRECLAB_MEMORY_LIMIT": "4896"])
        XCTAssertEqual(fits.status, 0, fits.stderr)

        // compare and consistency: the largest matrix, 128 and 24 + 1 bytes per weight.
        let base = path("base.safetensors"), tuned = path("tuned.safetensors"), other = path("other.safetensors")
        for (file, offset) in [(base, Float(0)), (tuned, Float(0.5)), (other, Float(0.25))] {
            let values = (0..<256).map { Float($0) / 64 + offset }
            try SafetensorsWriter.write(to: file, tensors: [
                (SafetensorsTensorSpec(name: "w", dtype: .f32, shape: [16, 16]),
                 values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } }),
            ])
        }
        let compare = try CLIRunner.run(["compare", base, tuned, "--k", "2", "--rank", "2"],
                                        environment: ["PRECLAB_MEMORY_LIMIT": String(256 * 128 - 1)])
        XCTAssertEqual(compare.status, 1, compare.stderr)
        XCTAssertTrue(compare.stderr.contains("comparing tensor 'w' (256 weights, about 128 bytes each) needs 32768 bytes"),
                      compare.stderr)
        let consistency = try CLIRunner.run(["consistency", "--base", base, tuned, other],
                                            environment: ["PRECLAB_MEMORY_LIMIT": String(256 * 25 - 1)])
        XCTAssertEqual(consistency.status, 1, consistency.stderr)
        XCTAssertTrue(consistency.stderr.contains("over 2 runs (256 weights, about 25 bytes each) needs 6400 bytes"),
                      consistency.stderr)
    }

    /// `-` (standard output) holds one document: with a second output it is a usage error.
    func testStandardOutputOnlyForTheOnlyOutput() throws {
        let stream = path("s.bin")
        XCTAssertEqual(try CLIRunner.run(synth(stream)).status, 0)
        let both = try CLIRunner.run(["replay", stream, "--quiet", "--json", "-", "--csv", path("r.csv")])
        XCTAssertEqual(both.status, 2, both.stderr)
        XCTAssertTrue(both.stderr.contains("'-' (standard output) is allowed only when it is the run's only output"), both.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("r.csv")))
        let alone = try CLIRunner.run(["replay", stream, "--quiet", "--json", "-"])
        XCTAssertEqual(alone.status, 0, alone.stderr)
        XCTAssertTrue(alone.stdout.hasPrefix("{"), alone.stdout)
    }
}
