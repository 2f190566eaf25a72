import PrecLabSupport

/// One record of a stream, viewed in place in the mapped file.
public struct UpdateRecord {
    public let kind: UpdateRecordKind
    public let step: UInt64
    /// NaN when unknown (always NaN for BASE by convention).
    public let learningRate: Double
    /// File offset of the record's first byte.
    public let offset: Int
    /// Index of the record in the file (0-based).
    public let index: Int
    /// Every tensor's values, concatenated in header order. Payloads are 4-byte
    /// aligned in the file (the spec guarantees it), so this is a zero-copy view.
    public let values: UnsafeBufferPointer<Float>
    let header: UpdateStreamHeader

    /// The values of tensor `tensorIndex` (header order).
    public func values(ofTensor tensorIndex: Int) -> UnsafeBufferPointer<Float> {
        let tensor = header.tensors[tensorIndex]
        return UnsafeBufferPointer(rebasing: values[tensor.payloadOffset..<(tensor.payloadOffset + tensor.elementCount)])
    }
}

/// What a walk over a stream found.
public struct UpdateStreamSummary: Sendable, Equatable {
    public var recordCount = 0
    /// STEP records.
    public var stepCount = 0
    public var firstStep: UInt64?
    public var lastStep: UInt64?
    /// Places where consecutive STEP records skip steps (step difference > 1).
    public var gapCount = 0
    /// Steps missing in those gaps, in total.
    public var missingSteps: UInt64 = 0
    /// The largest difference between consecutive STEP steps (1 when there is no gap).
    public var largestStride: UInt64 = 0
    public var baseStep: UInt64?
    public var finalStep: UInt64?
    /// Smallest and largest known (non-NaN) learning rate of STEP records.
    public var learningRateMin: Double?
    public var learningRateMax: Double?
    /// STEP records whose learning rate is NaN (unknown).
    public var unknownLearningRates = 0
    /// Whether every record's CRC was checked (and matched).
    public var crcVerified = false
    /// Set when `allowTruncated` dropped an incomplete last record at this offset.
    public var truncatedAt: Int?
    /// Bytes of the dropped incomplete record.
    public var truncatedBytes = 0

    public var hasBase: Bool { baseStep != nil }
    public var hasFinal: Bool { finalStep != nil }
    public var isTruncated: Bool { truncatedAt != nil }
}

/// Reads an update stream (spec: update-stream-v1.md) from a memory mapping.
///
/// Opening validates the preamble and header; `forEachRecord` walks the records once,
/// checking framing, order and (by default) CRCs as it goes and handing each record to
/// a closure as zero-copy views. Every error names the file, the byte offset and what
/// was expected.
public final class UpdateStreamReader: @unchecked Sendable {
    public struct Options: Sendable {
        /// Check every record's CRC-32 (default on).
        public var verifyCRC: Bool
        /// Keep the complete records before an incomplete last one instead of failing.
        public var allowTruncated: Bool
        public init(verifyCRC: Bool = true, allowTruncated: Bool = false) {
            self.verifyCRC = verifyCRC
            self.allowTruncated = allowTruncated
        }
    }

    public let path: String
    public let file: MappedFile
    public let header: UpdateStreamHeader
    public let options: Options
    /// Offset of the first record.
    public let recordsStart: Int

    public convenience init(path: String, options: Options = Options()) throws {
        try self.init(file: try MappedFile(path: path), options: options)
    }

    public init(file: MappedFile, options: Options = Options()) throws {
        self.file = file
        self.path = file.path
        self.options = options
        let size = file.count
        let bytes = file.bytes
        let magic = UpdateStreamFormat.magic
        for index in 0..<min(8, size) where bytes[index] != magic[index] {
            throw PrecLabError.badData(file: path, offset: index, "wrong magic: expected the update-stream magic 89 50 43 4C 42 0D 0A 1A (\\x89PCLB\\r\\n\\x1a)")
        }
        guard size >= UpdateStreamFormat.preambleSize else {
            throw PrecLabError.badData(file: path, offset: size, "file ends inside the 16-byte preamble (\(size) bytes)")
        }
        let version = file.littleEndian(UInt32.self, at: 8)
        guard version == UpdateStreamFormat.version else {
            throw PrecLabError.badData(file: path, offset: 8, "unsupported version \(version), expected 1")
        }
        let headerLength = Int(file.littleEndian(UInt32.self, at: 12))
        guard headerLength >= UpdateStreamFormat.minimumHeaderLength,
              headerLength <= UpdateStreamFormat.maximumHeaderLength else {
            throw PrecLabError.badData(file: path, offset: 12, "header length \(headerLength) out of range, expected 2 to 16777216")
        }
        guard (UpdateStreamFormat.preambleSize + headerLength) % 8 == 0 else {
            throw PrecLabError.badData(file: path, offset: 12, "header length \(headerLength) leaves the records unaligned: 16 + header length must be a multiple of 8")
        }
        let end = UpdateStreamFormat.preambleSize + headerLength
        guard end <= size else {
            throw PrecLabError.badData(file: path, offset: size, "file ends inside the header (header length \(headerLength) needs \(end) bytes, file has \(size))")
        }
        do {
            header = try UpdateStreamHeader.parse(file.bytes(16..<end))
        } catch let error as JSONParseError {
            throw PrecLabError.badData(file: path, offset: 16 + error.offset, "header is not valid UTF-8 JSON: \(error.message)")
        } catch let error as PrecLabError {
            throw PrecLabError.badData(file: path, offset: 16, "header: \(error.description)")
        }
        recordsStart = end
    }

    /// Walks every record, in file order, calling `body` for each one that passed its
    /// checks. Returns what the walk found.
    /// The views handed to `body` are valid only during the call: the record's pages are
    /// released from memory afterwards so that resident memory stays near one record.
    @discardableResult
    public func forEachRecord(_ body: (UpdateRecord) throws -> Void) throws -> UpdateStreamSummary {
        try walk(payloadNeeded: true, body)
    }

    /// Walks the stream only to validate it and summarise it; resident memory stays
    /// near one 64 MiB window whatever the record size.
    public func summarize() throws -> UpdateStreamSummary {
        try walk(payloadNeeded: false) { _ in }
    }

    /// Checks the CRC-32 of the record at `offset` (record `index` of the file) from
    /// its payload's CRC computed elsewhere: StreamReplay takes it while the replay
    /// reads the updates, so a stream verified by a walk without CRCs is read once.
    /// Throws the walk's error on a mismatch.
    public func verifyRecord(at offset: Int, index: Int, payloadCRC: UInt32) throws {
        let headerEnd = offset + UpdateStreamFormat.recordHeaderSize
        let computed = payloadAppender.combine(CRC32.update(0, file.bytes(offset..<headerEnd)), payloadCRC)
        let stored = file.littleEndian(UInt32.self, at: headerEnd + header.payloadLength)
        guard computed == stored else {
            throw crcMismatch(index: index, position: offset, stored: stored, computed: computed)
        }
    }

    /// Joins a record header's CRC with its payload's.
    private lazy var payloadAppender = CRC32.Appender(length: header.payloadLength)

    private func crcMismatch(index: Int, position: Int, stored: UInt32, computed: UInt32) -> PrecLabError {
        let trailer = position + UpdateStreamFormat.recordHeaderSize + header.payloadLength
        return PrecLabError.badData(file: path, offset: trailer, "record #\(index) (starting at byte \(position)): CRC-32 mismatch: stored \(hex(stored)), computed \(hex(computed)) over bytes \(position)..<\(trailer) (the record is corrupt)")
    }

    private func walk(payloadNeeded: Bool, _ body: (UpdateRecord) throws -> Void) throws -> UpdateStreamSummary {
        var summary = UpdateStreamSummary()
        summary.crcVerified = options.verifyCRC
        let size = file.count
        let bytes = file.bytes
        let payloadLength = header.payloadLength
        let recordLength = UpdateStreamFormat.recordHeaderSize + payloadLength + UpdateStreamFormat.recordTrailerSize
        var position = recordsStart
        var index = 0
        var previousStep: UInt64?   // BASE or STEP: the step the next STEP must exceed
        var lastStepRecord: UInt64?
        var sawFinal = false
        if size - position > payloadLength { file.adviseSequential() }

        while position < size {
            let remaining = size - position
            func fail(_ at: Int, _ what: String) -> PrecLabError {
                PrecLabError.badData(file: path, offset: at, "record #\(index) (starting at byte \(position)): \(what)")
            }
            // Check what is present before deciding the record is merely truncated.
            if remaining >= 4 {
                let tag = file.littleEndian(UInt32.self, at: position)
                guard UpdateRecordKind.fromTag(tag) != nil else {
                    let text = (0..<4).map { (byteIndex: Int) -> String in
                        let value = bytes[position + byteIndex]
                        return value >= 0x20 && value < 0x7F ? String(UnicodeScalar(value)) : "\\x" + String(value, radix: 16)
                    }.joined()
                    throw fail(position, "unknown tag '\(text)', expected BASE, STEP or FINL")
                }
            }
            if remaining >= 8 {
                let flags = file.littleEndian(UInt32.self, at: position + 4)
                guard flags == 0 else { throw fail(position + 4, "flags are \(flags), expected 0") }
            }
            if remaining >= 32 {
                let length = file.littleEndian(UInt64.self, at: position + 24)
                guard length == UInt64(payloadLength) else {
                    throw fail(position + 24, "payload_length is \(length), expected \(payloadLength) (\(header.totalElements) elements x 4 bytes)")
                }
            }
            if remaining < recordLength {
                if options.allowTruncated {
                    summary.truncatedAt = position
                    summary.truncatedBytes = remaining
                    break
                }
                throw PrecLabError.badData(file: path, offset: position, "file ends inside record #\(index): \(remaining) of its \(recordLength) bytes are present (a truncated stream; allow truncation to keep the \(summary.stepCount) complete steps before it)")
            }
            let kind = UpdateRecordKind.fromTag(file.littleEndian(UInt32.self, at: position))!
            let step = file.littleEndian(UInt64.self, at: position + 8)
            let learningRate = Double(bitPattern: file.littleEndian(UInt64.self, at: position + 16))
            let trailer = position + UpdateStreamFormat.recordHeaderSize + payloadLength
            let storedCRC = file.littleEndian(UInt32.self, at: trailer)
            let padding = file.littleEndian(UInt32.self, at: trailer + 4)
            guard padding == 0 else { throw fail(trailer + 4, "padding is \(padding), expected 0") }
            if options.verifyCRC {
                var computed: UInt32 = 0
                if payloadNeeded {
                    computed = CRC32.checksum(file.bytes(position..<trailer))
                } else {
                    computed = try CRC32.checksum(of: file, range: position..<trailer)
                }
                guard computed == storedCRC else {
                    throw crcMismatch(index: index, position: position, stored: storedCRC, computed: computed)
                }
            }
            if sawFinal {
                throw fail(position, "\(kind.rawValue) record after FINL: FINL must be the last record")
            }
            switch kind {
            case .base:
                guard index == 0 else {
                    throw fail(position, summary.hasBase ? "second BASE record: at most one BASE is allowed" : "BASE record is not the first record: BASE must come first")
                }
                summary.baseStep = step
                previousStep = step
            case .step:
                if let previousStep, step <= previousStep {
                    throw fail(position + 8, "step \(step) does not increase: expected a step greater than \(previousStep)")
                }
                if let lastStepRecord {
                    let stride = step - lastStepRecord
                    summary.largestStride = max(summary.largestStride, stride)
                    if stride > 1 {
                        summary.gapCount += 1
                        summary.missingSteps += stride - 1
                    }
                } else {
                    summary.firstStep = step
                    // The first update follows the base's step: anything beyond base + 1
                    // is a gap too (steps merged into the first recorded delta).
                    let stride = summary.baseStep.map { step - $0 } ?? 1
                    summary.largestStride = max(summary.largestStride, stride)
                    if stride > 1 {
                        summary.gapCount += 1
                        summary.missingSteps += stride - 1
                    }
                }
                if learningRate.isNaN {
                    summary.unknownLearningRates += 1
                } else {
                    summary.learningRateMin = min(summary.learningRateMin ?? learningRate, learningRate)
                    summary.learningRateMax = max(summary.learningRateMax ?? learningRate, learningRate)
                }
                summary.stepCount += 1
                summary.lastStep = step
                lastStepRecord = step
                previousStep = step
            case .final:
                if let expected = lastStepRecord ?? summary.baseStep, step != expected {
                    throw fail(position + 8, "FINL step is \(step), expected \(expected) (the step of the last \(lastStepRecord != nil ? "STEP" : "BASE") record)")
                }
                summary.finalStep = step
                sawFinal = true
            }
            let payloadStart = position + UpdateStreamFormat.recordHeaderSize
            let raw = file.bytes(payloadStart..<(payloadStart + payloadLength))
            let values = raw.baseAddress.map {
                UnsafeBufferPointer(start: $0.assumingMemoryBound(to: Float.self), count: header.totalElements)
            } ?? UnsafeBufferPointer(start: nil, count: 0)
            summary.recordCount += 1
            try body(UpdateRecord(kind: kind, step: step, learningRate: learningRate, offset: position,
                                  index: index, values: values, header: header))
            file.releasePages(position..<(position + recordLength))
            position += recordLength
            index += 1
        }
        return summary
    }

    private func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: false)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }
}

extension CRC32 {
    /// The CRC of a file range read with pread in 1 MiB pieces, several threads each
    /// reading and checksumming its own pieces, joined with `join`. Nothing stays
    /// resident, so validating a multi-gigabyte record costs a few MiB of memory.
    static func checksum(of file: MappedFile, range: Range<Int>, threads: Int = ParallelChunks.threadCount) throws -> UInt32 {
        let errors = Lock()
        nonisolated(unsafe) var failure: Error?
        let pieces = ParallelChunks.map(count: range.count, chunkSize: pieceSize, threads: threads) { piece -> UInt32 in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: piece.count, alignment: 64)
            defer { buffer.deallocate() }
            do {
                try file.read(into: buffer, at: range.lowerBound + piece.lowerBound)
            } catch {
                errors.withLock { failure = failure ?? error }
                return 0
            }
            return update(0, UnsafeRawBufferPointer(buffer))
        }
        if let failure { throw failure }
        return join(pieces, continuing: 0, totalLength: range.count)
    }
}
