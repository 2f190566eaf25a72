import Foundation
import PrecLabSupport
import XCTest

/// Runs the built `preclab` executable and captures what it printed.
struct CLIResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

enum CLIRunner {
    /// The directory holding the built products (`.build/debug` or `.build/release`).
    static var productsDirectory: URL {
        // On Linux the XCTest runner is itself a product in that directory.
        Bundle.main.bundleURL
    }

    static var executable: URL { productsDirectory.appendingPathComponent("preclab") }

    /// The package root (for tools/ and test fixtures).
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Runs `preclab` with `arguments`, bounded by `timeout` seconds: a run that takes
    /// longer is killed and the calling test fails with the command line. Spawned
    /// without Foundation's run loop (see ChildProcess), which can hang here.
    static func run(_ arguments: [String], environment: [String: String] = [:],
                    currentDirectory: URL? = nil, timeout: Double = 300) throws -> CLIResult {
        let result = try ChildProcess.run(executable.path, arguments, overrides: environment,
                                          currentDirectory: currentDirectory?.path, timeout: timeout)
        return CLIResult(status: result.status, stdout: result.stdoutText, stderr: result.stderrText)
    }

    /// A fresh temporary directory, removed by the caller's tearDown.
    static func temporaryDirectory() throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("preclab-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
