import XCTest
@testable import preclab

final class GeneralCLITests: XCTestCase {
    func testVersionAndHelp() throws {
        let version = try CLIRunner.run(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertTrue(version.stdout.hasPrefix("preclab "), version.stdout)

        let help = try CLIRunner.run(["--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("usage: preclab COMMAND"))
        // Every registered command: listed in the overview, its help printed by both
        // spellings, and every option it accepts documented there.
        XCTAssertFalse(CommandLineTool.commands.isEmpty)
        for command in CommandLineTool.commands {
            XCTAssertTrue(help.stdout.contains("  \(command.name) "), "--help does not list \(command.name)")
            let detail = try CLIRunner.run(["help", command.name])
            XCTAssertEqual(detail.status, 0, command.name)
            XCTAssertEqual(detail.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                           command.help.trimmingCharacters(in: .whitespacesAndNewlines), command.name)
            let dashHelp = try CLIRunner.run([command.name, "--help"])
            XCTAssertEqual(dashHelp.stdout, detail.stdout, command.name)
            for option in command.options {
                XCTAssertTrue(command.help.contains(option.name), "preclab help \(command.name) does not document \(option.name)")
            }
        }
    }

    /// An empty option value is a usage error for every command, never a crash
    /// (`--plots ""` once reached a precondition in the report writer).
    func testEmptyOptionValuesAreUsageErrors() throws {
        let cases: [[String]] = [
            ["replay", "x.bin", "--plots", ""], ["replay", "x.bin", "--json="], ["compare", "a", "b", "--csv", ""],
            ["consistency", "--base", "", "a", "b"], ["cast", "a", "b", "--dtype", ""], ["synth", "-o", ""],
            ["sweep", "e.json", "--out", ""], ["round", "1", "--dtype", ""],
        ]
        for arguments in cases {
            let result = try CLIRunner.run(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("non-empty value"), "\(arguments): \(result.stderr)")
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
