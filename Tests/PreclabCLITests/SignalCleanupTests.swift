import Foundation
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
                                                 "--lr", "1e-5", "--profile", "rl", "--quiet"],
                                     outputDirectory: path("logs"))
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
        XCTAssertEqual(tree(directory.path).filter { !$0.hasPrefix("logs") }, [], "files left behind")
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
        let child = try SpawnedChild(arguments: ["cast", input, output, "--dtype", "bf16", "--rounding", "stochastic"],
                                     outputDirectory: path("logs"))
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
        XCTAssertEqual(tree(directory.path).filter { !$0.hasPrefix("logs") }, ["big.safetensors"])
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
                                     environment: ["TMPDIR": scratch], outputDirectory: path("logs"))
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

/// The built preclab run with posix_spawn and reaped with a polling `waitpid`, never a
/// run-loop wait (see /work/shared/notes/test-hangs.md). Standard output and error go
/// to files, so a chatty child never blocks on a full pipe.
///
/// Local to these tests until the shared `ChildProcess` helper reaches this branch.
final class SpawnedChild {
    enum Status: Equatable {
        case exited(Int32)
        case signalled(Int32)
    }

    let pid: pid_t
    private let stdoutPath: String
    private let stderrPath: String
    private var reaped: Status?
    /// The child's peak resident set in KiB (`ru_maxrss` from `wait4`), once reaped.
    private(set) var peakResidentKiB: Int?

    init(arguments: [String], environment: [String: String] = [:], outputDirectory: String) throws {
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        stdoutPath = outputDirectory + "/stdout"
        stderrPath = outputDirectory + "/stderr"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        let executable = CLIRunner.executable.path
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child = pid_t()
        let result = posix_spawn(&child, executable, &actions, nil, argv, envp)
        guard result == 0 else {
            throw NSError(domain: "posix_spawn", code: Int(result),
                          userInfo: [NSLocalizedDescriptionKey: String(cString: strerror(result))])
        }
        pid = child
    }

    var isRunning: Bool { poll() == nil }

    var standardError: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    var standardOutput: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }

    /// Reaps the child if it has ended.
    private func poll() -> Status? {
        if let reaped { return reaped }
        var status: Int32 = 0
        var usage = rusage()
        let result = wait4(pid, &status, WNOHANG, &usage)
        guard result == pid else { return nil }
        peakResidentKiB = usage.ru_maxrss
        let signal = status & 0x7F
        reaped = signal == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signal)
        return reaped
    }

    /// The exit status, or nil when the child is still running after `seconds`.
    func wait(seconds: Double) -> Status? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let status = poll() { return status }
            usleep(10_000)
        }
        return poll()
    }

    func killIfRunning() {
        guard isRunning else { return }
        kill(pid, SIGKILL)
        _ = wait(seconds: 10)
    }
}
