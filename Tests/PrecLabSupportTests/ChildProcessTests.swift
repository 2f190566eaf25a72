import XCTest
@testable import PrecLabSupport

/// The run-loop-free subprocess runner every test and the bench use.
final class ChildProcessTests: XCTestCase {
    func testStatusAndBothStreamsAreCaptured() throws {
        let result = try ChildProcess.run("/bin/sh", ["-c", "printf out; printf err >&2; exit 3"])
        XCTAssertEqual(result.status, 3)
        XCTAssertNil(result.signal)
        XCTAssertEqual(result.stdoutText, "out")
        XCTAssertEqual(result.stderrText, "err")
    }

    /// More than a pipe's buffer on both streams at once: a runner that read one stream
    /// to the end before the other would deadlock here.
    func testLargeOutputOnBothStreamsDoesNotBlock() throws {
        let script = "head -c 300000 /dev/zero | tr '\\000' a; head -c 300000 /dev/zero | tr '\\000' b >&2"
        let result = try ChildProcess.run("/bin/sh", ["-c", script], timeout: 60)
        XCTAssertEqual(result.status, 0)
        XCTAssertEqual(result.stdout.count, 300_000)
        XCTAssertEqual(result.stderr.count, 300_000)
        XCTAssertTrue(result.stdout.allSatisfy { $0 == UInt8(ascii: "a") })
    }

    func testInputEnvironmentAndDirectory() throws {
        let folder = FileManager.default.temporaryDirectory.path
        let result = try ChildProcess.run("/bin/sh", ["-c", "cat; printf \"|$PRECLAB_CHILD_TEST|\"; pwd"],
                                          overrides: ["PRECLAB_CHILD_TEST": "v a l"], currentDirectory: folder,
                                          input: Array("from stdin".utf8))
        XCTAssertEqual(result.status, 0, result.stderrText)
        let resolved = URL(fileURLWithPath: folder).resolvingSymlinksInPath().path
        XCTAssertEqual(result.stdoutText, "from stdin|v a l|\(resolved)\n")
    }

    func testNoInputMeansDevNull() throws {
        let result = try ChildProcess.run("/bin/sh", ["-c", "cat; echo done"], timeout: 30)
        XCTAssertEqual(result.stdoutText, "done\n")
    }

    /// A child that outlives its deadline is killed (with the grandchild it started)
    /// and reported with its command line, in about the deadline, not never.
    func testTimeoutKillsTheProcessGroupAndNamesTheCommand() throws {
        let start = Date()
        XCTAssertThrowsError(try ChildProcess.run("/bin/sh", ["-c", "sleep 300 & sleep 300"], timeout: 1)) { error in
            guard case ChildProcess.Failure.timedOut(let command, _, _, _) = error else {
                return XCTFail("expected a timeout, got \(error)")
            }
            XCTAssertEqual(command, "/bin/sh -c 'sleep 300 & sleep 300'")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 30)
    }

    func testSignalledChildAndMissingProgram() throws {
        let killed = try ChildProcess.run("/bin/sh", ["-c", "kill -TERM $$"])
        XCTAssertEqual(killed.signal, SIGTERM)
        XCTAssertEqual(killed.status, 128 + SIGTERM)
        XCTAssertThrowsError(try ChildProcess.run("/nonexistent/program"))
        XCTAssertEqual(try ChildProcess.run("sh", ["-c", "exit 0"]).status, 0, "looked up in PATH")
    }
}

/// `start` for children a caller signals while they run.
final class RunningChildTests: XCTestCase {
    func testStartWaitSignalAndPeakMemory() throws {
        let child = try ChildProcess.start("/bin/sh", ["-c", "echo ready; exec sleep 300"])
        XCTAssertNil(child.wait(timeout: 0.2), "a sleeping child is still running")
        child.signal(SIGTERM)
        let result = try XCTUnwrap(child.wait(timeout: 30))
        XCTAssertEqual(result.signal, SIGTERM)
        XCTAssertEqual(result.stdoutText, "ready\n", "output collected while waiting is kept")
        XCTAssertGreaterThan(try XCTUnwrap(result.peakResidentKiB), 0)
        XCTAssertEqual(child.wait(timeout: 0)?.signal, SIGTERM, "waiting again returns the same result")
    }
}
