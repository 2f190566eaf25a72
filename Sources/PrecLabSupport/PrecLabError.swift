/// The errors every preclab command reports. Each kind maps to the exit status the
/// CLI promises: bad data (a file that breaks its format, a value out of range) is 1,
/// bad usage (unknown option, missing argument) is 2.
public enum PrecLabError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Input data is malformed. The message names the file, the offset or tensor, and
    /// what was expected.
    case badData(String)
    /// The command line is wrong.
    case usage(String)

    public var description: String {
        switch self {
        case .badData(let message), .usage(let message): return message
        }
    }

    /// The process exit status for this error.
    public var exitStatus: Int32 {
        switch self {
        case .badData: return 1
        case .usage: return 2
        }
    }

    /// A bad-data error located in a file, at a byte offset when one is known.
    public static func badData(file: String, offset: Int? = nil, _ what: String) -> PrecLabError {
        if let offset { return .badData("\(file): at byte offset \(offset): \(what)") }
        return .badData("\(file): \(what)")
    }
}
