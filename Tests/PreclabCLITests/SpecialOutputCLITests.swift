import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue 11, item 1 through the binary: `--json /dev/stdout`, `--json -`, a link to
/// /proc/self/fd/1 and a device node are written through, never replaced.
final class SpecialOutputCLITests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws { directory = try CLIRunner.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func makeStream() throws -> String {
        let stream = path("s.bin")
        let made = try CLIRunner.run(["synth", "-o", stream, "--shape", "8x8", "--steps", "2", "--lr", "1e-3",
                                      "--profile", "noise", "--quiet"])
        XCTAssertEqual(made.status, 0, made.stderr)
        return stream
    }

    private func fileType(_ path: String) -> mode_t? {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        return status.st_mode & S_IFMT
    }

    func testJsonToStandardOutputNamesWithoutForce() throws {
        let stream = try makeStream()
        let link = path("out-link")
        XCTAssertEqual(symlink("/proc/self/fd/1", link), 0)
        for destination in ["/dev/stdout", "-", link] {
            for force in [[], ["--force"]] {
                let result = try CLIRunner.run(["replay", stream, "--dtype", "bf16", "--quiet", "--json", destination] + force)
                XCTAssertEqual(result.status, 0, "\(destination) \(force): \(result.stderr)")
                let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
                XCTAssertNotNil(json, "\(destination): stdout is not the JSON report: \(result.stdout.prefix(200))")
            }
        }
        XCTAssertEqual(fileType(link), S_IFLNK, "the link was replaced")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted(), ["out-link", "s.bin"])
    }

    func testForceNeverReplacesADeviceNode() throws {
        let stream = try makeStream()
        guard geteuid() == 0 else { throw XCTSkip("mknod needs root") }
        let device = path("x")
        let dev: dev_t = (1 << 8) | 3  // char 1,3: /dev/null
        guard mknod(device, S_IFCHR | 0o666, dev) == 0 else { throw XCTSkip("mknod refused here") }
        for force in [[], ["--force"]] {
            let result = try CLIRunner.run(["replay", stream, "--dtype", "bf16", "--quiet", "--json", device] + force)
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(fileType(device), S_IFCHR, "the device node was replaced (\(force))")
        }
        // A regular file still needs --force.
        let regular = path("r.json")
        XCTAssertEqual(try CLIRunner.run(["replay", stream, "--dtype", "bf16", "--quiet", "--json", regular]).status, 0)
        let again = try CLIRunner.run(["replay", stream, "--dtype", "bf16", "--quiet", "--json", regular])
        XCTAssertEqual(again.status, 2)
        XCTAssertTrue(again.stderr.contains("already exists"), again.stderr)
        XCTAssertEqual(try CLIRunner.run(["replay", stream, "--dtype", "bf16", "--quiet", "--json", regular,
                                          "--force"]).status, 0)
    }
}
