import PrecLabFiles
import PrecLabFormats
import PrecLabSupport

/// How to read the stream being replayed.
public struct StreamReplayOptions: Sendable, Codable {
    /// Verify every record's CRC-32 (default on).
    public var verifyCRC = true
    /// Keep the complete records before an incomplete last one.
    public var allowTruncated = false
    /// Record a curve point every N steps (nil: about 50 points). The last step is
    /// always recorded.
    public var curveEvery: Int? = nil
    /// A checkpoint holding the base weights (needed when the stream has no BASE).
    public var baseCheckpoint: String? = nil
    /// Replay only these tensors (one shard of a sharded run); nil: every tensor.
    public var tensorNames: Set<String>? = nil
    /// Positions of tensors in the whole model when this stream holds only some of them
    /// (a recorder's shard file): rounding keys use them, so a tensor replays to the same
    /// bits as from a stream of every tensor. Nil: positions in this stream.
    public var modelPositions: [String: Int]? = nil
    /// Treat any difference between FINL and the fp32 replay as bad data (`--strict`);
    /// otherwise the differences are reported as `finl_mismatches` and a warning.
    public var strictFinal = false

    public init(verifyCRC: Bool = true, allowTruncated: Bool = false, curveEvery: Int? = nil,
                baseCheckpoint: String? = nil, tensorNames: Set<String>? = nil, strictFinal: Bool = false) {
        self.verifyCRC = verifyCRC
        self.allowTruncated = allowTruncated
        self.curveEvery = curveEvery
        self.baseCheckpoint = baseCheckpoint
        self.tensorNames = tensorNames
        self.strictFinal = strictFinal
    }
}

/// Replays an update stream file: one pass over the records, with the engine's state
/// as the only memory that scales with the model.
public enum StreamReplay {
    /// Number of curve points when `--every` is not given.
    public static let defaultCurvePoints = 50
    /// Update bytes applied tile-major in one batch (the mapped pages in play at once).
    public static let batchBytes = 1 << 30
    /// Streams with more update bytes than this, or records of at least
    /// `releaseRecordsFrom` bytes (large tensors), drop the mapped pages behind the
    /// finished tiles, so resident memory stays near the state. Smaller streams keep
    /// them: dropping pages while the other thread works costs it TLB shootdowns (the
    /// bench stream ran almost 2x slower end to end with it).
    public static let releaseAbove = 4 << 30
    public static let releaseRecordsFrom = 64 << 20

    /// What the error says when a stream has no BASE record and no base checkpoint was
    /// given (`StreamReplayOptions.baseCheckpoint`).
    public static let missingBaseExplanation = "the stream has no BASE record, so the base weights must come from "
        + "elsewhere: a base checkpoint (a safetensors file or directory whose tensor names and shapes match)"

    /// - Parameter progress: called as the replay advances with (steps done, steps in total).
    public static func run(
        path: String, configuration: ReplayConfiguration, options: StreamReplayOptions = StreamReplayOptions(),
        progress: (@Sendable (Int, Int) -> Void)? = nil
    ) throws -> ReplayResult {
        try runKeepingState(path: path, configuration: configuration, options: options, progress: progress).result
    }

    /// As `run`, also returning the engine so callers can read the final weights.
    ///
    /// The records are walked once (checking framing, and the CRCs of BASE and FINL,
    /// keeping views of the mapped updates), then the engine applies every step
    /// tile-major, taking each STEP record's CRC as it reads the updates (with a subset
    /// of the tensors, the walk checks every CRC instead), then FINL is compared. The
    /// stream stays mapped throughout; its pages are the kernel's to evict.
    public static func runKeepingState(
        path: String, configuration: ReplayConfiguration, options: StreamReplayOptions = StreamReplayOptions(),
        progress: (@Sendable (Int, Int) -> Void)? = nil
    ) throws -> (result: ReplayResult, engine: ReplayEngine) {
        // A framing-only walk (no CRC) counts the steps so the curve can be spaced.
        let framing = try UpdateStreamReader(path: path, options: .init(verifyCRC: false, allowTruncated: true))
        let outline = try framing.summarize()
        let totalSteps = outline.stepCount

        // With every tensor kept, each STEP record's CRC is taken while the engine reads
        // its updates (the stream is read once, not twice); BASE and FINL are checked as
        // the walk meets them, and every STEP before anything is written. A subset reads
        // only its tensors' bytes, so then the walk checks every CRC first.
        let stepCRCsInPass = options.verifyCRC && options.tensorNames == nil
        let reader = try UpdateStreamReader(
            path: path, options: .init(verifyCRC: options.verifyCRC && !stepCRCsInPass,
                                       allowTruncated: options.allowTruncated))
        reader.file.adviseSequential()
        let subset = TensorSubset(all: reader.header.tensors.enumerated().map {
            ReplayTensor(name: $1.name, shape: $1.shape, streamIndex: options.modelPositions?[$1.name] ?? $0)
        }, names: options.tensorNames, keepPositions: options.modelPositions != nil)
        defer { subset.release() }
        let tensors = subset.tensors
        var warnings: [String] = []

        var engine: ReplayEngine? = nil
        if let checkpoint = options.baseCheckpoint {
            let base = try CheckpointBase.load(checkpoint, for: tensors)
            engine = try base.withUnsafeBufferPointer {
                try ReplayEngine(tensors: tensors, base: $0, configuration: configuration)
            }
            if outline.hasBase {
                warnings.append("base weights taken from \(checkpoint); the stream's BASE record is ignored")
            }
        } else if !outline.hasBase {
            throw PrecLabError.badData(file: path, missingBaseExplanation)
        }

        let every = max(1, options.curveEvery ?? max(1, (totalSteps + defaultCurvePoints - 1) / defaultCurvePoints))
        var steps: [RecordedStep] = []
        var stepRecords: [(offset: Int, index: Int)] = []  // for the CRCs taken in the pass
        var final: (values: UnsafeBufferPointer<Float>, offset: Int)? = nil
        let summary = try reader.forEachRecord { record in
            if stepCRCsInPass && record.kind != .step {
                try reader.verifyRecord(at: record.offset, index: record.index,
                                        payloadCRC: CRC32.checksum(UnsafeRawBufferPointer(record.values)))
            }
            switch record.kind {
            case .base:
                if engine == nil {
                    engine = try ReplayEngine(tensors: tensors, base: try subset.gather(record.values),
                                              configuration: configuration)
                }
            case .step:
                guard engine != nil else {
                    throw PrecLabError.badData(file: path, offset: record.offset, "STEP before any base weights")
                }
                let number = steps.count + 1
                steps.append(RecordedStep(step: record.step, delta: record.values,
                                          curvePoint: number % every == 0 || number == totalSteps))
                stepRecords.append((record.offset, record.index))
            case .final:
                final = (record.values, record.offset)
            }
        }
        guard let engine else {
            throw PrecLabError.badData("\(path): the stream holds no records")
        }
        // The views stay valid: the reader keeps the file mapped (released pages are
        // read again from the page cache).
        try withExtendedLifetime(reader) {
            // Steps go to the engine in batches of at most `batchBytes` of updates, each
            // batch tile-major, so the mapped pages in play stay bounded however long the
            // stream is; finished element ranges are dropped from every record of a batch.
            let file = reader.file
            let fileStart = file.bytes.baseAddress
            let payloadBytes = max(1, 4 * engine.elementCount)
            let batchSize = max(1, batchBytes / payloadBytes)
            var done = 0
            for batchStart in stride(from: 0, to: steps.count, by: batchSize) {
                var batch = Array(steps[batchStart..<min(steps.count, batchStart + batchSize)])
                let payloads = batch.map { UnsafeRawPointer($0.delta.baseAddress!) - fileStart! }
                // A subset (one shard) is copied out of the records a batch at a time, so
                // its memory stays one batch of the kept tensors' updates.
                let gathered = try subset.gatherBatch(batch)
                defer { gathered?.deallocate() }
                if let gathered {
                    let count = engine.elementCount
                    batch = batch.enumerated().map { index, step in
                        RecordedStep(step: step.step, delta: UnsafeBufferPointer(rebasing: gathered[(index * count)..<((index + 1) * count)]),
                                     curvePoint: step.curvePoint)
                    }
                }
                let stepsBefore = done, stepCount = steps.count, batchCount = batch.count
                var batchProgress: (@Sendable (Int, Int) -> Void)? = nil
                if let progress {
                    batchProgress = { tiles, total in
                        progress(stepsBefore + tiles * batchCount / max(total, 1), stepCount)  // in steps
                    }
                }
                var release: (@Sendable (Range<Int>) -> Void)? = nil
                if gathered == nil, steps.count * payloadBytes > releaseAbove || payloadBytes >= releaseRecordsFrom {
                    release = { range in
                        for payload in payloads {
                            file.releasePages((payload + 4 * range.lowerBound)..<(payload + 4 * range.upperBound))
                        }
                    }
                }
                // The batch's records go into the page tables first, on both threads: a page
                // mapped on first read costs a fault there, and the kernel's prefetches of
                // pages not yet mapped are dropped, so the stream was read latency-bound
                // (docs/replay.md). Not when pages are released behind the tiles (large
                // streams), which keeps resident memory low instead.
                if gathered == nil, release == nil, let first = payloads.first, let last = payloads.last {
                    file.populate(first..<(last + payloadBytes), threads: configuration.threads)
                }
                if stepCRCsInPass {
                    var payloadCRCs = [UInt32](repeating: 0, count: batch.count)
                    try payloadCRCs.withUnsafeMutableBufferPointer {
                        try engine.applyAll(batch, progress: batchProgress, release: release, payloadCRCs: $0)
                    }
                    for (position, payloadCRC) in payloadCRCs.enumerated() {
                        let record = stepRecords[batchStart + position]
                        try reader.verifyRecord(at: record.offset, index: record.index, payloadCRC: payloadCRC)
                    }
                } else {
                    try engine.applyAll(batch, progress: batchProgress, release: release)
                }
                done += batch.count
            }
            if let final, configuration.scale == 1 {
                do {
                    let values = try subset.gather(final.values)
                    if options.strictFinal {
                        try engine.verifyFinal(values)
                    } else {
                        try engine.checkFinal(values)
                    }
                } catch let error as PrecLabError {
                    throw PrecLabError.badData(file: path, offset: final.offset, error.description)
                }
                let payload = UnsafeRawPointer(final.values.baseAddress!) - reader.file.bytes.baseAddress!
                reader.file.releasePages(payload..<(payload + 4 * final.values.count))
            }
            // Done with the records: their pages leave the page tables on both threads now,
            // not on one in munmap when the reader goes.
            reader.file.releaseAllPages(threads: configuration.threads)
        }
        if configuration.scale != 1 {
            warnings.append("updates scaled by \(configuration.scale) (--scale): a first-order, open-loop "
                            + "counterfactual; FINL is not compared")
        }
        if summary.gapCount > 0 {
            warnings.append(
                "\(summary.gapCount) gap(s) in step numbers (\(summary.missingSteps) step(s) missing, "
                    + "largest stride \(summary.largestStride)): per-step rounding of the pure, stochastic "
                    + "and kahan policies is only approximated")
        }
        if let offset = summary.truncatedAt {
            warnings.append(
                "the stream is truncated at byte offset \(offset) (\(summary.truncatedBytes) bytes of an "
                    + "incomplete record dropped); kept \(summary.stepCount) complete step(s)")
        }
        if !summary.hasFinal && configuration.scale == 1 {
            warnings.append("the stream has no FINL record: the fp32 replay could not be verified")
        }
        if !options.verifyCRC {
            warnings.append("CRC-32 verification was skipped")
        }
        return (engine.finish(warnings: warnings), engine)
    }
}

/// The tensors a replay tracks: every tensor of the stream, or a subset whose values
/// are copied out of each record (in stream order) into one reused buffer.
final class TensorSubset {
    let tensors: [ReplayTensor]
    /// Flat ranges of the kept tensors in a record, nil when every tensor is kept.
    private let ranges: [Range<Int>]?
    private let totalCount: Int
    private var buffer: UnsafeMutableBufferPointer<Float>

    /// - Parameter keepPositions: keep the tensors' `streamIndex` even when every tensor
    ///   is kept (the stream is a part of a larger model).
    init(all: [ReplayTensor], names: Set<String>?, keepPositions: Bool = false) {
        totalCount = all.reduce(0) { $0 + $1.count }
        guard let names else {
            tensors = keepPositions ? all : all.map { ReplayTensor(name: $0.name, shape: $0.shape) }
            ranges = nil
            buffer = UnsafeMutableBufferPointer(start: nil, count: 0)
            return
        }
        var kept: [ReplayTensor] = []
        var ranges: [Range<Int>] = []
        var start = 0
        for (index, tensor) in all.enumerated() {
            if names.contains(tensor.name) {
                kept.append(ReplayTensor(name: tensor.name, shape: tensor.shape, streamIndex: tensor.streamIndex ?? index))
                ranges.append(start..<(start + tensor.count))
            }
            start += tensor.count
        }
        tensors = kept
        self.ranges = ranges
        buffer = .allocate(capacity: ranges.reduce(0) { $0 + $1.count })
    }

    /// The kept tensors' updates of every step of `batch`, one step after another in one
    /// new buffer (the caller deallocates it); nil when every tensor is kept.
    func gatherBatch(_ batch: [RecordedStep]) throws -> UnsafeMutableBufferPointer<Float>? {
        guard ranges != nil else { return nil }
        let count = buffer.count
        let gathered = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, batch.count * count))
        do {
            for (index, step) in batch.enumerated() {
                let values = try gather(step.delta)
                _ = UnsafeMutableBufferPointer(rebasing: gathered[(index * count)..<((index + 1) * count)])
                    .initialize(from: values)
            }
        } catch {
            gathered.deallocate()
            throw error
        }
        return gathered
    }

    /// The kept tensors' values of a record holding every tensor.
    func gather(_ values: UnsafeBufferPointer<Float>) throws -> UnsafeBufferPointer<Float> {
        guard let ranges else { return values }
        guard values.count == totalCount else {
            throw PrecLabError.badData("a record holds \(values.count) values, the stream's tensors need \(totalCount)")
        }
        var position = 0
        for range in ranges {
            _ = UnsafeMutableBufferPointer(rebasing: buffer[position..<(position + range.count)])
                .initialize(from: UnsafeBufferPointer(rebasing: values[range]))
            position += range.count
        }
        return UnsafeBufferPointer(buffer)
    }

    func release() { if ranges != nil { buffer.deallocate() } }
}

/// Base weights from a checkpoint whose tensors match the stream's names and shapes.
public enum CheckpointBase {
    /// The checkpoint's values for `tensors`, concatenated, decoded to fp32. Every
    /// mismatch (missing tensor, wrong shape, non-float dtype) is reported in one error.
    public static func load(_ path: String, for tensors: [ReplayTensor]) throws -> [Float] {
        let checkpoint = try Checkpoint.open(path)
        var problems: [String] = []
        var found: [CheckpointTensor] = []
        for tensor in tensors {
            guard let stored = checkpoint.tensor(named: tensor.name) else {
                problems.append("tensor '\(tensor.name)' is missing from the checkpoint")
                continue
            }
            if stored.shape != tensor.shape {
                problems.append("tensor '\(tensor.name)': checkpoint shape \(stored.shape), stream shape \(tensor.shape)")
                continue
            }
            guard stored.dtype.isFloatingPoint, stored.dtype.byteWidth != nil else {
                problems.append("tensor '\(tensor.name)': dtype \(stored.dtype.name) is not a byte-sized float type")
                continue
            }
            found.append(stored)
        }
        guard problems.isEmpty else {
            throw PrecLabError.badData("\(path): base checkpoint does not match the stream: "
                                       + problems.joined(separator: "; "))
        }
        var values: [Float] = []
        values.reserveCapacity(tensors.reduce(0) { $0 + $1.count })
        for stored in found {
            do {
                values += try StoredTensorDecoding.floats(checkpoint.bytes(of: stored), dtypeName: stored.dtype.name,
                                                          count: stored.info.elementCount)
            } catch let error as PrecLabError {
                throw PrecLabError.badData("\(path): tensor '\(stored.name)': \(error.description)")
            }
        }
        return values
    }
}
