import XCTest

final class GeneralCLITests: XCTestCase {
    func testVersionAndHelp() throws {
        let version = try CLIRunner.run(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertTrue(version.stdout.hasPrefix("preclab "), version.stdout)

        let help = try CLIRunner.run(["--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("usage: preclab COMMAND"))
        for command in ["formats", "round"] where help.stdout.contains(command) {
            let detail = try CLIRunner.run(["help", command])
            XCTAssertEqual(detail.status, 0, command)
        }
    }

    func testUnknownCommandAndNoArgumentsAreUsageErrors() throws {
        XCTAssertEqual(try CLIRunner.run([]).status, 2)
        let unknown = try CLIRunner.run(["frobnicate"])
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.stderr.contains("unknown command 'frobnicate'"), unknown.stderr)
        XCTAssertEqual(try CLIRunner.run(["help", "frobnicate"]).status, 2)
    }
}
