#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PrecLabSupport

/// An output directory holding the files of one report (tables, CSV, plots, JSON).
///
/// The directory (and its parents) is created when missing. Each file is written
/// atomically. `write(_:)` writes its files as one `OutputSet`: all of them or none.
public struct ReportDirectory: Sendable {
    public let path: String
    public let force: Bool
    /// Files the command reads; none of them may be overwritten.
    public let inputs: [String]

    /// Creates the directory when it does not exist.
    /// - Throws: `PrecLabError.outputRefused` when `path` exists and is not a directory,
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

    /// Writes several files as one `OutputSet` (all or none); returns their paths in
    /// order. All destinations are checked first (existing files without `force`,
    /// inputs, names repeated in the list).
    @discardableResult
    public func write(_ files: [(name: String, file: any ReportFile)]) throws -> [String] {
        for (name, _) in files where name.isEmpty || name.contains("/") {
            throw PrecLabError.invalidArgument("\(filePath(name)): a report file name must be a plain file name")
        }
        let set = OutputSet(force: force, inputs: inputs)
        try set.write(files.map { OutputSet.File(path: filePath($0.name), content: $0.file) })
        return files.map { filePath($0.name) }
    }

    /// `mkdir -p`.
    static func createDirectories(_ path: String) throws {
        var created: [String] = []
        try OutputSet.makeDirectories(path, created: &created)
    }
}
