import Foundation
import PrecLabSupport
import XCTest

/// The Python interpreter the cross-checks use: the private virtual environment that
/// `make pyenv` (part of `make test`) creates under `.build/pyenv` with pinned numpy,
/// ml_dtypes, safetensors and scipy. The machine's own Python is never used or changed.
///
/// A cross-check skips only when the package it needs could not be installed into that
/// environment (the Makefile lists such packages in `.build/pyenv/unavailable.txt`), or
/// when the environment does not exist at all (a bare `swift test`); a failing oracle
/// script fails the test.
public enum PythonOracle {
    /// The package root (this file is Tests/PrecLabTestSupport/PythonOracle.swift).
    public static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// The environment's folder: `PRECLAB_PYENV` when set, else `.build/pyenv`.
    public static var environmentFolder: String {
        ProcessInfo.processInfo.environment["PRECLAB_PYENV"] ?? packageRoot + "/.build/pyenv"
    }

    /// The interpreter: `PRECLAB_PYTHON` when set, else the environment's.
    public static var interpreter: String {
        ProcessInfo.processInfo.environment["PRECLAB_PYTHON"] ?? environmentFolder + "/bin/python"
    }

    /// Skips the calling test, with one line saying why, when `package` cannot be used:
    /// no environment, or the package is listed as not installable.
    public static func require(_ packages: String...) throws {
        guard FileManager.default.isExecutableFile(atPath: interpreter) else {
            throw XCTSkip("cross-check skipped: no Python environment at \(interpreter); run `make pyenv` (or `make test`)")
        }
        let listing = (try? String(contentsOfFile: environmentFolder + "/unavailable.txt", encoding: .utf8)) ?? ""
        let unavailable = Set(listing.split(whereSeparator: \.isNewline).map { String($0.split(separator: " ").first ?? "") })
        for package in packages where unavailable.contains(package) {
            throw XCTSkip("cross-check skipped: the package \(package) could not be installed into \(environmentFolder) (see unavailable.txt there)")
        }
    }

    /// Whether `module` imports in the environment (for optional packages like torch).
    public static func canImport(_ module: String) -> Bool {
        guard FileManager.default.isExecutableFile(atPath: interpreter) else { return false }
        return (try? ChildProcess.run(interpreter, ["-c", "import \(module)"], timeout: 120).status) == 0
    }

    /// Runs `script` with `arguments`, `tools/` on PYTHONPATH. Throws (failing the test)
    /// when the script exits non-zero, with its output in the message.
    @discardableResult
    public static func run(_ script: String, _ arguments: [String] = [], input: String? = nil,
                           timeout: Double = 300) throws -> String {
        let result = try ChildProcess.run(
            interpreter, ["-c", script] + arguments,
            overrides: ["PYTHONPATH": packageRoot + "/tools", "PYTHONDONTWRITEBYTECODE": "1"],
            input: input.map { Array($0.utf8) }, timeout: timeout)
        guard result.status == 0 else {
            throw OracleFailure(message: "the Python oracle failed (exit \(result.status)):\n"
                                + result.stdoutText + result.stderrText)
        }
        return result.stdoutText
    }

    public struct OracleFailure: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }
}
