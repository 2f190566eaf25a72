#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes an output file so that readers never see a partial one: bytes go to a
/// temporary file in the same directory, which is renamed over the destination only
/// on `commit()`. A writer that is dropped or aborted removes its temporary file.
///
/// Before anything is written the destination is checked: an existing file is kept
/// unless `force` is set, and a destination that is one of the command's inputs is
/// always refused.
public final class AtomicFileWriter {
    public let path: String
    public let temporaryPath: String
    private var descriptor: Int32
    private var finished = false
    private var buffer: [UInt8] = []
    private static let bufferLimit = 1 << 20

    /// Opens a temporary file next to `path`.
    /// - Parameters:
    ///   - force: allow replacing an existing file at `path`.
    ///   - inputs: paths the command reads; `path` may never name one of them.
    public init(path: String, force: Bool = false, inputs: [String] = []) throws {
        try AtomicFileWriter.checkDestination(path, force: force, inputs: inputs)
        self.path = path
        var template = Array((path + ".tmp-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw PrecLabError.badData("\(path): cannot create a temporary file next to it: \(errnoText())")
        }
        descriptor = fd
        temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        fchmod(fd, 0o644)
    }

    deinit {
        if !finished { discardTemporary() }
    }

    /// Refuses a destination that exists (without `force`), is a directory, or is the
    /// same file as one of `inputs`.
    public static func checkDestination(_ path: String, force: Bool, inputs: [String]) throws {
        var destination = stat()
        guard stat(path, &destination) == 0 else { return }  // does not exist yet
        for input in inputs {
            var source = stat()
            if stat(input, &source) == 0, source.st_dev == destination.st_dev,
               source.st_ino == destination.st_ino {
                throw PrecLabError.outputRefused(path: path, reason: .isInput)
            }
        }
        if (destination.st_mode & S_IFMT) == S_IFDIR {
            throw PrecLabError.outputRefused(path: path, reason: .isDirectory)
        }
        if !force {
            throw PrecLabError.outputRefused(path: path, reason: .exists)
        }
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

    /// Makes the file visible at `path`.
    public func commit() throws {
        precondition(!finished, "commit() called twice")
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
        finished = true
    }

    /// Drops everything written so far.
    public func abort() {
        guard !finished else { return }
        discardTemporary()
    }

    private func discardTemporary() {
        if descriptor >= 0 { close(descriptor); descriptor = -1 }
        unlink(temporaryPath)
        finished = true
    }

    private func writeFully(_ bytes: UnsafeRawBufferPointer) throws {
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
