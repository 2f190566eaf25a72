#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PrecLabSupport

/// The files one run writes, written as a set: all of them or none.
///
/// `check` runs before any work: every destination is distinct from every other, none
/// is an input, none exists unless replacing is allowed, and every directory to write
/// into is a directory or can be made. `write` stages every file as a temporary file
/// next to its destination, then renames them all into place; when anything fails
/// before the renames, the staged files and the directories it made are removed.
public struct OutputSet: Sendable {
    /// One file of the set.
    public struct File {
        public let path: String
        public let content: any ReportFile

        public init(path: String, content: any ReportFile) {
            self.path = path
            self.content = content
        }
    }

    /// Replace existing regular files.
    public let force: Bool
    /// Files the run reads; no output may replace one.
    public let inputs: [String]

    public init(force: Bool, inputs: [String]) {
        self.force = force
        self.inputs = inputs
    }

    /// The pre-flight check of `files` (destinations) and `directories` (created when
    /// missing). Writes nothing.
    public func check(files: [String], directories: [String] = []) throws {
        var seen: [String: String] = [:]
        for path in files {
            let key = OutputSet.canonicalPath(path)
            if seen[key] != nil { throw PrecLabError.outputRefused(path: path, reason: .writtenTwice) }
            seen[key] = path
        }
        for directory in directories { try OutputSet.checkDirectory(directory) }
        let madeHere = Set(directories.map(OutputSet.canonicalPath))
        for path in files {
            try AtomicFileWriter.checkDestination(path, force: force, inputs: inputs)
            try OutputSet.checkParent(of: path, madeHere: madeHere)
        }
    }

    /// A file's folder must exist, or be one of the directories the set creates.
    static func checkParent(of path: String, madeHere: Set<String>) throws {
        let canonical = canonicalPath(path)
        guard let slash = canonical.lastIndex(of: "/"), slash != canonical.startIndex else { return }
        let folder = String(canonical[..<slash])
        if madeHere.contains(folder) { return }
        guard let isDirectory = isDirectory(folder) else {
            throw PrecLabError.outputRefused(path: path, reason: .missingDirectory)
        }
        guard isDirectory else { throw PrecLabError.outputRefused(path: folder, reason: .notADirectory) }
    }

    /// Writes every file or none (see the type's description).
    public func write(_ files: [File], directories: [String] = []) throws {
        try check(files: files.map(\.path), directories: directories)
        var created: [String] = []
        var staged: [AtomicFileWriter] = []
        do {
            for directory in directories { try OutputSet.makeDirectories(directory, created: &created) }
            for file in files {
                let writer = try AtomicFileWriter(path: file.path, force: force, inputs: inputs)
                staged.append(writer)
                try writer.write(file.content.fileText())
                try writer.flushBuffer()
            }
        } catch {
            for writer in staged { writer.abort() }
            for directory in created.reversed() { rmdir(directory) }
            throw error
        }
        for (index, writer) in staged.enumerated() {
            do {
                try writer.commit()
            } catch {
                for later in staged[(index + 1)...] { later.abort() }
                throw error
            }
        }
    }

    /// An absolute path with `.`, `..` and repeated slashes resolved, and its longest
    /// existing prefix resolved through symbolic links, so two spellings of one
    /// destination compare equal.
    public static func canonicalPath(_ path: String) -> String {
        var absolute = path
        if !path.hasPrefix("/") {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            if getcwd(&buffer, buffer.count) != nil {
                absolute = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } + "/" + path
            }
        }
        var parts: [Substring] = []
        for part in absolute.split(separator: "/") {
            if part == "." { continue }
            if part == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(part)
        }
        // Resolve the longest existing prefix through symbolic links; keep the rest as spelt.
        var rest: [Substring] = []
        while !parts.isEmpty {
            if let resolved = realpath("/" + parts.joined(separator: "/"), nil) {
                defer { free(resolved) }
                let real = String(cString: resolved)
                return ([real == "/" ? "" : real] + rest.reversed().map(String.init)).joined(separator: "/")
            }
            rest.append(parts.removeLast())
        }
        return "/" + rest.reversed().joined(separator: "/")
    }

    /// A directory to write into must be one, or be creatable: its nearest existing
    /// ancestor is a directory.
    static func checkDirectory(_ path: String) throws {
        var current: String? = path
        while let folder = current {
            if let isDirectory = isDirectory(folder) {
                guard isDirectory else { throw PrecLabError.outputRefused(path: folder, reason: .notADirectory) }
                return
            }
            current = parent(of: folder)
        }
    }

    /// `mkdir -p`, recording every directory it made.
    static func makeDirectories(_ path: String, created: inout [String]) throws {
        if let isDirectory = isDirectory(path) {
            guard isDirectory else { throw PrecLabError.outputRefused(path: path, reason: .notADirectory) }
            return
        }
        if let parent = parent(of: path) { try makeDirectories(parent, created: &created) }
        if mkdir(path, 0o755) == 0 {
            created.append(path)
        } else if errno != EEXIST {
            throw PrecLabError.badData("\(path): cannot create the output directory: \(errnoText())")
        }
    }

    /// Whether `path` is a directory; nil when nothing is there.
    static func isDirectory(_ path: String) -> Bool? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return (status.st_mode & S_IFMT) == S_IFDIR
    }

    /// The folder part of a path without trailing slashes; nil for a single component
    /// (relative to the working directory) or the root.
    static func parent(of path: String) -> String? {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/"), slash != trimmed.startIndex else { return nil }
        return String(trimmed[..<slash])
    }
}
