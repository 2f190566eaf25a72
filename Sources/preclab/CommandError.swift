import PrecLabSupport

/// A mistake on the command line: an unknown or missing option, a value out of range,
/// outputs that collide. Only the executable throws it; the libraries throw
/// `PrecLabError`.
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// The one place that turns an error into the exit status and the line on stderr.
enum CommandError {
    /// 0 success, 1 bad data, 2 bad usage (README, "Exit status").
    static func exitStatus(_ error: any Error) -> Int32 {
        switch error {
        case is UsageError: return 2
        case let error as PrecLabError: return error.isDataError ? 1 : 2
        default: return 1
        }
    }

    /// `preclab COMMAND: error: MESSAGE`, with the hint a command-line user needs where
    /// the library's message cannot name an option.
    static func message(_ error: any Error, command: String) -> String {
        var text = Substring("\(error)")
        // Some messages already name the command or say "error:"; never say it twice.
        let prefix = "preclab \(command): "
        if text.hasPrefix(prefix) { text = text.dropFirst(prefix.count) }
        if text.hasPrefix("error: ") { text = text.dropFirst("error: ".count) }
        var line = prefix + "error: " + text
        if case PrecLabError.outputRefused(_, .exists) = error { line += " (use --force to replace it)" }
        return line
    }
}
