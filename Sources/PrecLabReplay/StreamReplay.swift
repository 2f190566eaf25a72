import PrecLabFiles
import PrecLabFormats
import PrecLabSupport

/// How to read the stream being replayed.
public struct StreamReplayOptions: Sendable {
    /// Verify every record's CRC-32 (default on).
    public var verifyCRC = true
    /// Keep the complete records before an incomplete last one.
    public var allowTruncated = false
    /// Record a curve point every N steps (nil: about 50 points). The last step is
    /// always recorded.
    public var curveEvery: Int? = nil
    /// A checkpoint holding the base weights (needed when the stream has no BASE).
    public var baseCheckpoint: String? = nil
    /// Treat any difference between FINL and the fp32 replay as bad data (`--strict`);
    /// otherwise the differences are reported as `finl_mismatches` and a warning.
    public var strictFinal = false

    public init(verifyCRC: Bool = true, allowTruncated: Bool = false, curveEvery: Int? = nil,
                baseCheckpoint: String? = nil, strictFinal: Bool = false) {
        self.verifyCRC = verifyCRC
        self.allowTruncated = allowTruncated
        self.curveEvery = curveEvery
        self.baseCheckpoint = baseCheckpoint
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
    /// The records are walked once (checking framing and CRCs, keeping views of the
    /// mapped updates), then the engine applies every step tile-major, then FINL is
    /// compared. The stream stays mapped throughout; its pages are the kernel's to evict.
    public static func runKeepingState(
        path: String, configuration: ReplayConfiguration, options: StreamReplayOptions = StreamReplayOptions(),
        progress: (@Sendable (Int, Int) -> Void)? = nil
    ) throws -> (result: ReplayResult, engine: ReplayEngine) {
        // A framing-only walk (no CRC) counts the steps so the curve can be spaced.
        let framing = try UpdateStreamReader(path: path, options: .init(verifyCRC: false, allowTruncated: true))
        let outline = try framing.summarize()
        let totalSteps = outline.stepCount

        let reader = try UpdateStreamReader(
            path: path, options: .init(verifyCRC: options.verifyCRC, allowTruncated: options.allowTruncated))
        reader.file.adviseSequential()
        let tensors = reader.header.tensors.map { ReplayTensor(name: $0.name, shape: $0.shape) }
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
        var final: (values: UnsafeBufferPointer<Float>, offset: Int)? = nil
        let summary = try reader.forEachRecord { record in
            switch record.kind {
            case .base:
                if engine == nil {
                    engine = try ReplayEngine(tensors: tensors, base: record.values, configuration: configuration)
                }
            case .step:
                guard engine != nil else {
                    throw PrecLabError.badData(file: path, offset: record.offset, "STEP before any base weights")
                }
                let number = steps.count + 1
                steps.append(RecordedStep(step: record.step, delta: record.values,
                                          curvePoint: number % every == 0 || number == totalSteps))
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
                let batch = Array(steps[batchStart..<min(steps.count, batchStart + batchSize)])
                let payloads = batch.map { UnsafeRawPointer($0.delta.baseAddress!) - fileStart! }
                let stepsBefore = done, stepCount = steps.count, batchCount = batch.count
                var batchProgress: (@Sendable (Int, Int) -> Void)? = nil
                if let progress {
                    batchProgress = { tiles, total in
                        progress(stepsBefore + tiles * batchCount / max(total, 1), stepCount)  // in steps
                    }
                }
                var release: (@Sendable (Range<Int>) -> Void)? = nil
                if steps.count * payloadBytes > releaseAbove || payloadBytes >= releaseRecordsFrom {
                    release = { range in
                        for payload in payloads {
                            file.releasePages((payload + 4 * range.lowerBound)..<(payload + 4 * range.upperBound))
                        }
                    }
                }
                try engine.applyAll(batch, progress: batchProgress, release: release)
                done += batch.count
            }
            if let final, configuration.scale == 1 {
                do {
                    if options.strictFinal {
                        try engine.verifyFinal(final.values)
                    } else {
                        try engine.checkFinal(final.values)
                    }
                } catch let error as PrecLabError {
                    throw PrecLabError.badData(file: path, offset: final.offset, error.description)
                }
                let payload = UnsafeRawPointer(final.values.baseAddress!) - reader.file.bytes.baseAddress!
                reader.file.releasePages(payload..<(payload + 4 * final.values.count))
            }
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
