import Foundation
import PrecLabSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue 11, item 4: SIGINT and SIGTERM during a long write remove the temporary files
/// of the outputs in flight and exit 130 / 143 with a one-line message.
final class SignalCleanupTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws { directory = try CLIRunner.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Every file below `root`, as paths relative to it.
    private func tree(_ root: String) -> [String] {
        (FileManager.default.subpaths(atPath: root) ?? []).sorted()
    }

    /// Polls until `condition` holds or `seconds` pass.
    private func waitFor(seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    func testSigtermDuringSynthRemovesTheTemporaryStream() throws {
        let output = path("s.bin")
        // 3002 records of 1 MiB: far longer than the test waits before signalling.
        let child = try SpawnedChild(arguments: ["synth", "-o", output, "--shape", "512x512", "--steps", "3000",
                                                 "--lr", "1e-5", "--profile", "rl", "--quiet"])
        defer { child.killIfRunning() }
        let started = waitFor(seconds: 120) {
            tree(directory.path).contains { $0.hasPrefix("s.bin.tmp-") } || !child.isRunning
        }
        XCTAssertTrue(started && child.isRunning, "synth did not start writing: \(child.standardError)")
        kill(child.pid, SIGTERM)
        let status = try XCTUnwrap(child.wait(seconds: 60), "preclab did not exit after SIGTERM")
        XCTAssertEqual(status, .exited(143))
        let lines = child.standardError.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, child.standardError)
        XCTAssertEqual(lines.first.map(String.init),
                       "preclab synth: error: interrupted by SIGTERM; unfinished outputs removed")
        XCTAssertEqual(tree(directory.path), [], "files left behind")
    }

    func testSigintDuringCastRemovesTheTemporaryOutput() throws {
        // A 1 GiB F64 checkpoint, sparse on disk: the header, then a hole of zeros.
        let input = path("big.safetensors")
        let elements = 1 << 27
        var header = Array(#"{"w":{"dtype":"F64","shape":[\#(elements)],"data_offsets":[0,\#(elements * 8)]}}"#.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        let length = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
        try Data(length + header).write(to: URL(fileURLWithPath: input))
        XCTAssertEqual(truncate(input, off_t(8 + header.count + elements * 8)), 0)

        let output = path("out.safetensors")
        let child = try SpawnedChild(arguments: ["cast", input, output, "--dtype", "bf16", "--rounding", "stochastic"])
        defer { child.killIfRunning() }
        let started = waitFor(seconds: 120) {
            tree(directory.path).contains { $0.hasPrefix("out.safetensors.tmp-") } || !child.isRunning
        }
        XCTAssertTrue(started && child.isRunning, "cast did not start writing: \(child.standardError)")
        kill(child.pid, SIGINT)
        let status = try XCTUnwrap(child.wait(seconds: 60), "preclab did not exit after SIGINT")
        XCTAssertEqual(status, .exited(130))
        XCTAssertTrue(child.standardError.hasSuffix(
            "preclab cast: error: interrupted by SIGINT; unfinished outputs removed\n"), child.standardError)
        XCTAssertEqual(tree(directory.path), ["big.safetensors"])
    }

    func testSigintDuringSweepRemovesTheScratchDirectory() throws {
        let scratch = path("tmp")
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let experiment = path("long.json")
        try Data("""
        {
          "name": "long",
          "question": "Is an interrupted sweep cleaned up?",
          "stream": { "shapes": ["512x512"], "steps": 1500, "lr": 1e-5, "profile": "rl", "seed": 1 },
          "grid": { "lr": [1e-5] },
          "replay": { "dtype": "bf16", "policies": ["master"] },
          "outputs": ["sparsity"]
        }
        """.utf8).write(to: URL(fileURLWithPath: experiment))
        let child = try SpawnedChild(arguments: ["sweep", experiment, "--out", path("out")],
                                     environment: ["TMPDIR": scratch])
        defer { child.killIfRunning() }
        let started = waitFor(seconds: 120) {
            tree(scratch).contains { $0.contains(".tmp-") } || !child.isRunning
        }
        XCTAssertTrue(started && child.isRunning, "sweep did not start writing: \(child.standardError)")
        kill(child.pid, SIGINT)
        let status = try XCTUnwrap(child.wait(seconds: 60), "preclab did not exit after SIGINT")
        XCTAssertEqual(status, .exited(130))
        XCTAssertTrue(child.standardError.hasSuffix(
            "preclab sweep: error: interrupted by SIGINT; unfinished outputs removed\n"), child.standardError)
        XCTAssertEqual(tree(scratch), [], "the scratch directory or its stream was left behind")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("out")))
    }
}

/// The built preclab, started with `ChildProcess.start` (posix_spawn, never a run-loop
/// wait) so a test can signal it while it runs, and reaped with its peak memory.
final class SpawnedChild {
    enum Status: Equatable {
        case exited(Int32)
        case signalled(Int32)
    }

    private let child: ChildProcess.Running
    private var finished: ChildProcess.Result?

    var pid: pid_t { child.pid }

    init(arguments: [String], environment: [String: String] = [:]) throws {
        child = try ChildProcess.start(CLIRunner.executable.path, arguments, overrides: environment)
    }

    /// Collects output for a moment; false once the child has exited.
    var isRunning: Bool {
        if finished == nil { finished = child.wait(timeout: 0.01) }
        return finished == nil
    }

    var standardError: String { finished?.stderrText ?? "" }
    var standardOutput: String { finished?.stdoutText ?? "" }
    /// The child's peak resident set in KiB, once reaped.
    var peakResidentKiB: Int? { finished?.peakResidentKiB }

    /// The exit status, or nil when the child is still running after `seconds`.
    func wait(seconds: Double) -> Status? {
        if finished == nil { finished = child.wait(timeout: seconds) }
        guard let finished else { return nil }
        return finished.signal.map { .signalled($0) } ?? .exited(finished.status)
    }

    func killIfRunning() {
        if finished == nil { finished = child.kill() }
    }
}
