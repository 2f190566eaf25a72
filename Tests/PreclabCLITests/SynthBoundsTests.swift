import Foundation
import XCTest

/// Options that would overflow fp32 are refused before anything is written.
final class SynthBoundsTests: XCTestCase {
    func testOptionsBeyondFp32AreUsageErrors() throws {
        let directory = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("s.bin").path
        let base = ["synth", "-o", output, "--shape", "8x8", "--steps", "2", "--profile", "rl", "--quiet"]
        for extra in [["--lr", "1e300"], ["--lr", "1e-5", "--entry-rms", "1e39"],
                      ["--lr", "1e-5", "--snr", "1e40"], ["--lr", "1e-5", "--noise-rms", "1e40"], ["--lr", "1e-5", "--weight-decay", "1e300"]] {
            let result = try CLIRunner.run(base + extra)
            XCTAssertEqual(result.status, 2, "\(extra): \(result.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: output), "\(extra) left a file")
        }
        XCTAssertEqual(try CLIRunner.run(base + ["--lr", "1e-5"]).status, 0)
    }
}
