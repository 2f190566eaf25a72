import PrecLabSupport

/// One `preclab` subcommand. Each lives in its own file under Commands/ and is listed
/// in `CommandLineTool.commands`.
protocol Command {
    /// The word after `preclab`.
    static var name: String { get }
    /// One line for `preclab --help`.
    static var summary: String { get }
    /// The full text for `preclab help NAME` and `preclab NAME --help`.
    static var help: String { get }
    /// The options the command accepts; anything else is a usage error.
    static var options: [OptionSpec] { get }
    /// Runs the command. Throws `PrecLabError` for bad data (exit 1) or usage (exit 2).
    static func run(_ arguments: ParsedArguments) throws
}
