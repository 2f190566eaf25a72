#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What an output path names, which decides how it is written.
public enum OutputDestination: Equatable, Sendable {
    /// Nothing exists there yet: a new regular file.
    case absent
    /// An existing regular file: replaced (only with `force`).
    case regularFile
    /// A character device or a FIFO (`/dev/null`, a named pipe): opened and written
    /// through, never replaced.
    case specialFile
    /// One of this process's open descriptors: `-` (standard output), `/dev/stdout`,
    /// `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`, or a symbolic link to one of them.
    /// Written through that descriptor, never replaced.
    case descriptor(Int32)
}

/// Writes an output file so that readers never see a partial one: bytes go to a
/// temporary file in the same directory, which is renamed over the destination only
/// on `commit()`. A writer that is dropped or aborted removes its temporary file, and
/// the temporary file is registered with `InFlightFiles` so that SIGINT/SIGTERM remove
/// it too.
///
/// Special destinations are written through instead: a character device or FIFO is
/// opened for writing, `-` and links to this process's descriptors (`/dev/stdout`) are
/// written to that descriptor. Nothing there is ever replaced or renamed over, with or
/// without `force`; bytes already written through cannot be withdrawn by `abort()`.
///
/// Before anything is written the destination is checked: an existing regular file is
/// kept unless `force` is set, a directory or block device is refused, and a
/// destination that is one of the command's inputs is always refused.
public final class AtomicFileWriter {
    /// The path that means standard output.
    public static let standardOutputPath = "-"

    public let path: String
    /// The temporary file renamed to `path` on commit; equal to `path` when the writer
    /// writes through a special destination (see `writesThrough`).
    public let temporaryPath: String
    /// Whether bytes go straight to `path` (a device, FIFO or descriptor) instead of a
    /// temporary file.
    public let writesThrough: Bool
    private var descriptor: Int32
    private var finished = false
    private var buffer: [UInt8] = []
    private var registration: InFlightFiles.Token?
    private static let bufferLimit = 1 << 20

    /// Opens a temporary file next to `path` (or the special destination `path` names).
    /// - Parameters:
    ///   - force: allow replacing an existing regular file at `path`.
    ///   - inputs: paths the command reads; `path` may never name one of them.
    public init(path: String, force: Bool = false, inputs: [String] = []) throws {
        let destination = try AtomicFileWriter.checkDestination(path, force: force, inputs: inputs)
        self.path = path
        switch destination {
        case .descriptor(let number):
            let fd = fcntl(number, F_DUPFD_CLOEXEC, 0)
            guard fd >= 0 else {
                throw PrecLabError.badData("\(path): cannot write to descriptor \(number): \(errnoText())")
            }
            descriptor = fd
            temporaryPath = path
            writesThrough = true
        case .specialFile:
            var fd: Int32
            repeat { fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY) } while fd < 0 && errno == EINTR
            guard fd >= 0 else {
                throw PrecLabError.badData("\(path): cannot open for writing: \(errnoText())")
            }
            descriptor = fd
            temporaryPath = path
            writesThrough = true
        case .absent, .regularFile:
            (descriptor, temporaryPath, registration) = try AtomicFileWriter.createTemporary(next: path)
            writesThrough = false
            fchmod(descriptor, 0o644)
        }
    }

    deinit {
        if !finished { discardTemporary() }
    }

    /// Creates `PATH.tmp-XXXXXX` exclusively. The name is registered with
    /// `InFlightFiles` before the file exists, so a signal at any moment finds it.
    static func createTemporary(next path: String) throws -> (Int32, String, InFlightFiles.Token?) {
        let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        for _ in 0..<100 {
            let suffix = String((0..<6).map { _ in letters[Int.random(in: 0..<letters.count)] })
            let candidate = path + ".tmp-" + suffix
            let token = InFlightFiles.register(file: candidate)
            let fd = open(candidate, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd >= 0 { return (fd, candidate, token) }
            let failure = errno
            InFlightFiles.unregister(token)
            if failure == EEXIST { continue }
            errno = failure
            throw PrecLabError.badData("\(path): cannot create a temporary file next to it: \(errnoText())")
        }
        throw PrecLabError.badData("\(path): cannot create a temporary file next to it: 100 names taken")
    }

    /// Classifies `path` and refuses a destination that is a regular file that exists
    /// (without `force`), a directory, a block device or socket, or the same file as one
    /// of `inputs`. Special files (character devices, FIFOs, this process's
    /// descriptors) are accepted with or without `force`: they are written through.
    @discardableResult
    public static func checkDestination(_ path: String, force: Bool, inputs: [String]) throws -> OutputDestination {
        let kind = try destination(of: path)
        var target = stat()
        let found: Bool
        if case .descriptor(let number) = kind {
            found = fstat(number, &target) == 0
            if !found {
                throw PrecLabError.outputRefused(path: path, reason: .closedDescriptor)
            }
        } else {
            found = stat(path, &target) == 0
        }
        guard found else { return kind }
        let type = target.st_mode & S_IFMT
        for input in inputs {
            var source = stat()
            // Pipes and terminals carry a stream, not a file that can be overwritten;
            // only regular files (and FIFOs by name) are compared.
            if stat(input, &source) == 0, source.st_dev == target.st_dev, source.st_ino == target.st_ino,
               type == S_IFREG || type == S_IFIFO {
                throw PrecLabError.outputRefused(path: path, reason: .isInput)
            }
        }
        if case .descriptor = kind { return kind }
        switch type {
        case S_IFDIR:
            throw PrecLabError.outputRefused(path: path, reason: .isDirectory)
        case S_IFBLK:
            throw PrecLabError.outputRefused(path: path, reason: .unsupportedKind)
        case S_IFSOCK:
            throw PrecLabError.outputRefused(path: path, reason: .unsupportedKind)
        case S_IFCHR, S_IFIFO:
            return .specialFile
        default:
            if !force {
                throw PrecLabError.outputRefused(path: path, reason: .exists)
            }
            return .regularFile
        }
    }

    /// What `path` names, following symbolic links only to recognise links to this
    /// process's descriptors (`/dev/stdout` -> `/proc/self/fd/1`). Does not check
    /// `force` or inputs (`checkDestination` does).
    public static func destination(of path: String) throws -> OutputDestination {
        if path == standardOutputPath { return .descriptor(1) }
        guard !path.isEmpty else { throw PrecLabError.invalidArgument("an output path is empty") }
        var current = path
        for _ in 0..<40 {
            if let number = descriptorNumber(named: current) { return .descriptor(number) }
            var link = stat()
            guard lstat(current, &link) == 0 else { break }
            guard (link.st_mode & S_IFMT) == S_IFLNK else { break }
            var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let length = readlink(current, &target, Int(PATH_MAX))
            guard length > 0 else { break }
            let text = String(decoding: target[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("/") {
                current = text
            } else if let slash = current.lastIndex(of: "/") {
                current = String(current[...slash]) + text
            } else {
                current = text
            }
        }
        var status = stat()
        guard stat(path, &status) == 0 else { return .absent }
        switch status.st_mode & S_IFMT {
        case S_IFCHR, S_IFIFO: return .specialFile
        default: return .regularFile
        }
    }

    /// The descriptor number of `/dev/stdout`-style names, nil for any other path.
    static func descriptorNumber(named path: String) -> Int32? {
        switch path {
        case "/dev/stdin": return 0
        case "/dev/stdout": return 1
        case "/dev/stderr": return 2
        default: break
        }
        for prefix in ["/dev/fd/", "/proc/self/fd/", "/proc/\(getpid())/fd/", "/proc/thread-self/fd/"]
        where path.hasPrefix(prefix) {
            let rest = path.dropFirst(prefix.count)
            if let number = Int32(rest), number >= 0, String(number) == rest { return number }
        }
        return nil
    }

    /// Appends bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count > AtomicFileWriter.bufferLimit { try flushBuffer() }
        if bytes.count >= AtomicFileWriter.bufferLimit {
            try writeFully(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    public func write(_ text: String) throws {
        var copy = text
        try copy.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Flushes buffered bytes to the temporary file.
    public func flushBuffer() throws {
        guard !buffer.isEmpty else { return }
        let pending = buffer
        buffer.removeAll(keepingCapacity: true)
        try pending.withUnsafeBytes { try writeFully($0) }
    }

    /// Makes the file visible at `path` (for a write-through destination: flushes the
    /// last bytes and closes it).
    public func commit() throws {
        precondition(!finished, "commit() called twice")
        if writesThrough {
            do {
                try flushBuffer()
            } catch {
                discardTemporary()
                throw error
            }
            close(descriptor)
            descriptor = -1
            finished = true
            return
        }
        try flushBuffer()
        if fsync(descriptor) != 0 {
            let message = errnoText()
            discardTemporary()
            throw PrecLabError.badData("\(path): cannot sync the output: \(message)")
        }
        close(descriptor)
        descriptor = -1
        if rename(temporaryPath, path) != 0 {
            let message = errnoText()
            discardTemporary()
            throw PrecLabError.badData("\(path): cannot move the output into place: \(message)")
        }
        InFlightFiles.unregister(registration)
        registration = nil
        finished = true
    }

    /// Drops everything written so far (for a write-through destination: stops writing;
    /// what was already written through stays written).
    public func abort() {
        guard !finished else { return }
        discardTemporary()
    }

    private func discardTemporary() {
        if descriptor >= 0 { close(descriptor); descriptor = -1 }
        if !writesThrough {
            unlink(temporaryPath)
            InFlightFiles.unregister(registration)
            registration = nil
        }
        buffer = []
        finished = true
    }

    private func writeFully(_ bytes: UnsafeRawBufferPointer) throws {
        // Text printed on standard output goes first when we write to that descriptor.
        if writesThrough { fflush(nil) }
        try writeAll(descriptor: descriptor, bytes, path: path)
    }

    /// Writes a whole file atomically in one call.
    public static func write(
        _ bytes: [UInt8], to path: String, force: Bool = false, inputs: [String] = []
    ) throws {
        let writer = try AtomicFileWriter(path: path, force: force, inputs: inputs)
        try writer.write(bytes)
        try writer.commit()
    }

    /// Writes a whole text file atomically in one call.
    public static func write(
        text: String, to path: String, force: Bool = false, inputs: [String] = []
    ) throws {
        try write(Array(text.utf8), to: path, force: force, inputs: inputs)
    }
}

/// Writes every byte to a file descriptor, retrying short writes and EINTR.
public func writeAll(descriptor: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    guard var base = bytes.baseAddress else { return }
    var remaining = bytes.count
    while remaining > 0 {
        let written = Glibc.write(descriptor, base, remaining)
        if written < 0 {
            if errno == EINTR { continue }
            throw PrecLabError.badData("\(path): write failed: \(errnoText())")
        }
        remaining -= written
        base += written
    }
}

/// The message for the current `errno`.
public func errnoText() -> String {
    String(cString: strerror(errno))
}
