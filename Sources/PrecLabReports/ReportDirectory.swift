#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PrecLabSupport

/// An output directory holding the files of one report (tables, CSV, plots, JSON).
///
/// The directory (and its parents) is created when missing. Each file is written
/// atomically. `write(_:)` checks every destination before writing any, so a refused
/// overwrite leaves no half-replaced set of files behind.
public struct ReportDirectory: Sendable {
    public let path: String
    public let force: Bool
    /// Files the command reads; none of them may be overwritten.
    public let inputs: [String]

    /// Creates the directory when it does not exist.
    /// - Throws: `PrecLabError.usage` when `path` exists and is not a directory,
    ///   `.badData` when it cannot be created.
    public init(path: String, force: Bool = false, inputs: [String] = []) throws {
        precondition(!path.isEmpty, "ReportDirectory needs a path")
        self.path = path
        self.force = force
        self.inputs = inputs
        try ReportDirectory.createDirectories(path)
    }

    /// The path of a file named `name` inside the directory.
    public func filePath(_ name: String) -> String {
        path.hasSuffix("/") ? path + name : path + "/" + name
    }

    /// Writes one file; returns its path.
    @discardableResult
    public func write(_ file: some ReportFile, named name: String) throws -> String {
        try write([(name, file)]).first!
    }

    /// Writes several files; returns their paths in order. All destinations are checked
    /// first (existing files without `force`, inputs, names repeated in the list).
    @discardableResult
    public func write(_ files: [(name: String, file: any ReportFile)]) throws -> [String] {
        var seen = Set<String>()
        for (name, _) in files {
            guard !name.isEmpty, !name.contains("/") else {
                throw PrecLabError.usage("\(filePath(name)): a report file name must be a plain file name")
            }
            guard seen.insert(name).inserted else {
                throw PrecLabError.usage("\(filePath(name)): the report would write this file twice")
            }
            try AtomicFileWriter.checkDestination(filePath(name), force: force, inputs: inputs)
        }
        var written: [String] = []
        for (name, file) in files {
            try file.write(to: filePath(name), force: force, inputs: inputs)
            written.append(filePath(name))
        }
        return written
    }

    /// `mkdir -p`.
    static func createDirectories(_ path: String) throws {
        var status = stat()
        if stat(path, &status) == 0 {
            guard (status.st_mode & S_IFMT) == S_IFDIR else {
                throw PrecLabError.usage("\(path): exists and is not a directory")
            }
            return
        }
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        if let slash = trimmed.lastIndex(of: "/"), slash != trimmed.startIndex {
            try createDirectories(String(trimmed[..<slash]))
        }
        if mkdir(String(trimmed), 0o755) != 0, errno != EEXIST {
            throw PrecLabError.badData("\(path): cannot create the output directory: \(errnoText())")
        }
    }
}
