import PrecLabSupport

/// One `preclab` subcommand. Each lives in its own file under Commands/ and is listed
/// in `CommandLineTool.commands`. The analyses themselves live in PrecLabAnalysis; a
/// command parses, calls and renders.
protocol Command {
    /// The word after `preclab`.
    static var name: String { get }
    /// One line for `preclab --help`.
    static var summary: String { get }
    /// The full text for `preclab help NAME` and `preclab NAME --help`.
    static var help: String { get }
    /// The options the command accepts; anything else is a usage error.
    static var options: [OptionSpec] { get }
    /// Runs the command: parse and validate everything (options, inputs, the output
    /// pre-flight check) before any work, call the library, render the result. Throws
    /// `UsageError` or `PrecLabError`; `CommandError` turns either into the exit status
    /// and the one `preclab COMMAND: error:` line.
    static func run(_ arguments: ParsedArguments) throws
}
