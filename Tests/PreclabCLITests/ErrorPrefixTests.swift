import Foundation
import XCTest

/// Issue 11: every error line carries `error:`, including the messages that already
/// named their command ("preclab cast: --dtype is required" used to print bare).
final class ErrorPrefixTests: XCTestCase {
    func testEveryErrorLineSaysError() throws {
        let cases: [([String], String)] = [
            (["cast", "a.safetensors", "b.safetensors"], "preclab cast: error: --dtype is required"),
            (["round", "1.0", "--dtype", "bf16", "--custom", "e5m2"], "preclab round: error: give either --dtype or --custom"),
            (["round", "1.0"], "preclab round: error: --dtype is required"),
            (["formats", "extra"], "preclab formats: error: unexpected argument 'extra'"),
            (["frobnicate"], "preclab: error: unknown command 'frobnicate'"),
            (["inspect", "/nonexistent/x.bin"], "preclab inspect: error: "),
        ]
        for (arguments, prefix) in cases {
            let result = try CLIRunner.run(arguments)
            XCTAssertNotEqual(result.status, 0, "\(arguments)")
            XCTAssertTrue(result.stderr.hasPrefix(prefix), "\(arguments): \(result.stderr)")
            XCTAssertFalse(result.stderr.contains("error: error:"), result.stderr)
        }
    }
}
