/// The errors the preclab libraries throw. The cases say what went wrong, not how a
/// program should exit: the `preclab` executable maps them to its exit statuses (bad
/// data 1, bad usage 2), a Swift caller handles them as it likes.
public enum PrecLabError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Input data is malformed. The message names the file, the offset or tensor, and
    /// what was expected.
    case badData(String)
    /// Input data is malformed at a known place: the fields a caller can inspect.
    case malformed(DataFault)
    /// A value the caller passed is not acceptable (an unknown format name, a number
    /// out of range, records written out of order).
    case invalidArgument(String)
    /// An output destination that may not be written.
    case outputRefused(path: String, reason: OutputRefusal)

    /// Why an output destination is refused.
    public enum OutputRefusal: String, Sendable {
        /// A file exists there and replacing was not allowed.
        case exists
        /// It is one of the files being read.
        case isInput
        /// It is a directory where a file is written.
        case isDirectory
        /// A file is in the way of a directory to be created or used.
        case notADirectory
        /// Another output of the same run would be written there too.
        case writtenTwice
        /// The folder it would be written into does not exist.
        case missingDirectory
        /// A block device or a socket: outputs go to regular files, character devices,
        /// FIFOs or standard output.
        case unsupportedKind
        /// It names a descriptor of this process that is not open.
        case closedDescriptor
    }

    public var description: String {
        switch self {
        case .badData(let message), .invalidArgument(let message): return message
        case .malformed(let fault): return fault.description
        case .outputRefused(let path, let reason):
            switch reason {
            case .exists: return "\(path): already exists"
            case .isInput: return "\(path): refusing to overwrite an input file"
            case .isDirectory: return "\(path): is a directory, expected a file path"
            case .notADirectory: return "\(path): exists and is not a directory"
            case .writtenTwice: return "\(path): the output would be written twice"
            case .missingDirectory: return "\(path): its directory does not exist"
            case .unsupportedKind:
                return "\(path): is a block device or socket; outputs go to regular files, character devices, FIFOs or standard output"
            case .closedDescriptor: return "\(path): names a descriptor that is not open"
            }
        }
    }

    /// Whether the error is about the data read (as opposed to the request made).
    public var isDataError: Bool {
        switch self {
        case .badData, .malformed: return true
        case .invalidArgument, .outputRefused: return false
        }
    }

    /// A bad-data error located in a file, at a byte offset when one is known.
    public static func badData(file: String, offset: Int? = nil, tensor: String? = nil, _ what: String) -> PrecLabError {
        .malformed(DataFault(file: file, offset: offset, tensor: tensor, expected: what))
    }

    /// Kept so code written before the typed cases compiles; library code throws
    /// `.invalidArgument` or `.outputRefused` instead.
    @available(*, deprecated, message: "throw .invalidArgument or .outputRefused; exit statuses belong to the executable")
    public static func usage(_ message: String) -> PrecLabError { .invalidArgument(message) }
}

/// Where malformed data was found and what was expected there.
public struct DataFault: Equatable, Sendable, CustomStringConvertible {
    /// The file read.
    public var file: String
    /// The byte offset in `file`, when the fault has one.
    public var offset: Int?
    /// The tensor concerned, when the fault has one.
    public var tensor: String?
    /// What was expected (and found), in words.
    public var expected: String

    public init(file: String, offset: Int? = nil, tensor: String? = nil, expected: String) {
        self.file = file
        self.offset = offset
        self.tensor = tensor
        self.expected = expected
    }

    public var description: String {
        var text = file + ":"
        if let offset { text += " at byte offset \(offset):" }
        if let tensor { text += " tensor '\(tensor)':" }
        return text + " " + expected
    }
}
