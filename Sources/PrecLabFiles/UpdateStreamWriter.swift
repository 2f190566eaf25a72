#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PrecLabSupport

/// Writes an update stream (spec: update-stream-v1.md).
///
/// Two modes:
/// - streaming (default): the file is created at once and every record is written
///   straight to it, so a killed training run loses at most the record in flight and
///   the reader can keep the rest (`allowTruncated`);
/// - atomic: everything goes to a temporary file that appears at `path` only on
///   `close()`, for whole files written by a command.
///
/// The writer enforces the same order rules as the reader: BASE only first, STEP steps
/// strictly increasing, FINL last with the last STEP's step.
public final class UpdateStreamWriter {
    public let path: String
    public let header: UpdateStreamHeader
    private var descriptor: Int32 = -1
    private var atomic: AtomicFileWriter?
    private var recordCount = 0
    private var previousStep: UInt64?
    private var lastStep: UInt64?
    private var baseStep: UInt64?
    private var closed = false
    private var finished = false

    /// Creates the file and writes the preamble and header.
    /// - Parameters:
    ///   - atomic: write through a temporary file renamed on `close()`.
    ///   - force: replace an existing file.
    ///   - inputs: files the caller reads (never overwritten).
    public init(path: String, header: UpdateStreamHeader, atomic: Bool = false,
                force: Bool = false, inputs: [String] = []) throws {
        self.path = path
        self.header = header
        let prefix = header.encodedPrefix()
        guard prefix.count - UpdateStreamFormat.preambleSize <= UpdateStreamFormat.maximumHeaderLength else {
            throw PrecLabError.badData("\(path): header JSON is \(prefix.count - 16) bytes, above the 16777216-byte limit")
        }
        if atomic {
            let writer = try AtomicFileWriter(path: path, force: force, inputs: inputs)
            self.atomic = writer
            try writer.write(prefix)
        } else {
            // `-` and /dev/stdout-style names go to that descriptor (never a file named "-").
            if case .descriptor(let number) = try AtomicFileWriter.checkDestination(path, force: force, inputs: inputs) {
                descriptor = fcntl(number, F_DUPFD_CLOEXEC, 0)
            } else {
                descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            }
            guard descriptor >= 0 else {
                throw PrecLabError.badData("\(path): cannot create: \(errnoText())")
            }
            try prefix.withUnsafeBytes { try writeDirect($0) }
        }
    }

    public convenience init(path: String, tensors: [UpdateStreamTensor],
                            metadata: [(key: String, value: String)] = [],
                            atomic: Bool = false, force: Bool = false, inputs: [String] = []) throws {
        try self.init(path: path, header: try UpdateStreamHeader(tensors: tensors, metadata: metadata),
                      atomic: atomic, force: force, inputs: inputs)
    }

    deinit {
        if !closed {
            if descriptor >= 0 { Glibc.close(descriptor) }
            atomic?.abort()
        }
    }

    /// The weights before the first step (all tensors concatenated in header order).
    public func writeBase(step: UInt64 = 0, values: UnsafeBufferPointer<Float>) throws {
        guard recordCount == 0 else {
            throw PrecLabError.invalidArgument("\(path): BASE must be the first record (\(recordCount) already written)")
        }
        try writeRecord(.base, step: step, learningRate: .nan, values: values)
        baseStep = step
        previousStep = step
    }

    /// One optimizer step's update (`master_after - master_before`, fp32).
    public func writeStep(step: UInt64, learningRate: Double, values: UnsafeBufferPointer<Float>) throws {
        if let previousStep, step <= previousStep {
            throw PrecLabError.invalidArgument("\(path): step \(step) does not increase (previous record is at step \(previousStep))")
        }
        try writeRecord(.step, step: step, learningRate: learningRate, values: values)
        previousStep = step
        lastStep = step
    }

    /// The fp32 master weights after the last step; ends the stream (`close` follows).
    public func writeFinal(values: UnsafeBufferPointer<Float>) throws {
        guard let step = lastStep ?? baseStep else {
            throw PrecLabError.invalidArgument("\(path): FINL needs a STEP or BASE record before it")
        }
        try writeRecord(.final, step: step, learningRate: .nan, values: values)
        finished = true
    }

    /// Convenience overloads taking one array per tensor, in header order.
    public func writeBase(step: UInt64 = 0, tensors: [[Float]]) throws {
        try concatenated(tensors).withUnsafeBufferPointer { try writeBase(step: step, values: $0) }
    }

    public func writeStep(step: UInt64, learningRate: Double, tensors: [[Float]]) throws {
        try concatenated(tensors).withUnsafeBufferPointer {
            try writeStep(step: step, learningRate: learningRate, values: $0)
        }
    }

    public func writeFinal(tensors: [[Float]]) throws {
        try concatenated(tensors).withUnsafeBufferPointer { try writeFinal(values: $0) }
    }

    private func writeRecord(_ kind: UpdateRecordKind, step: UInt64, learningRate: Double,
                             values: UnsafeBufferPointer<Float>) throws {
        guard !closed else { throw PrecLabError.invalidArgument("\(path): the stream is closed") }
        guard !finished else { throw PrecLabError.invalidArgument("\(path): FINL was written; it must be the last record") }
        guard values.count == header.totalElements else {
            throw PrecLabError.invalidArgument("\(path): \(kind.rawValue) record needs \(header.totalElements) values (all tensors), got \(values.count)")
        }
        var prefix: [UInt8] = []
        prefix.reserveCapacity(32)
        prefix += Array(kind.rawValue.utf8)
        appendLittleEndian(&prefix, UInt32(0))
        appendLittleEndian(&prefix, step)
        appendLittleEndian(&prefix, learningRate.bitPattern)
        appendLittleEndian(&prefix, UInt64(header.payloadLength))
        let payload = UnsafeRawBufferPointer(values)
        var crc = CRC32.checksum(prefix)
        crc = CRC32.checksum(payload, continuing: crc)
        var trailer: [UInt8] = []
        appendLittleEndian(&trailer, crc)
        appendLittleEndian(&trailer, UInt32(0))
        try write(prefix)
        try write(payload)
        try write(trailer)
        recordCount += 1
    }

    /// Finishes the file (renames it into place in atomic mode).
    public func close() throws {
        guard !closed else { return }
        closed = true
        if let atomic {
            try atomic.commit()
        } else {
            // Pipes, terminals and devices cannot be synced (EINVAL); there is nothing to sync.
            let status = fsync(descriptor)
            let failure = errno
            Glibc.close(descriptor)
            descriptor = -1
            if status != 0, failure != EINVAL {
                errno = failure
                throw PrecLabError.badData("\(path): cannot sync: \(errnoText())")
            }
        }
    }

    private func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    private func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let atomic { try atomic.write(bytes) } else { try writeDirect(bytes) }
    }

    private func writeDirect(_ bytes: UnsafeRawBufferPointer) throws {
        try writeAll(descriptor: descriptor, bytes, path: path)
    }

    private func concatenated(_ tensors: [[Float]]) throws -> [Float] {
        guard tensors.count == header.tensors.count else {
            throw PrecLabError.invalidArgument("\(path): expected \(header.tensors.count) tensors, got \(tensors.count)")
        }
        var all: [Float] = []
        all.reserveCapacity(header.totalElements)
        for (index, values) in tensors.enumerated() {
            guard values.count == header.tensors[index].elementCount else {
                throw PrecLabError.invalidArgument("\(path): tensor '\(header.tensors[index].name)' needs \(header.tensors[index].elementCount) values, got \(values.count)")
            }
            all += values
        }
        return all
    }
}
