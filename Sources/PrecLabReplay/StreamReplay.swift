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

    public init(verifyCRC: Bool = true, allowTruncated: Bool = false, curveEvery: Int? = nil,
                baseCheckpoint: String? = nil) {
        self.verifyCRC = verifyCRC
        self.allowTruncated = allowTruncated
        self.curveEvery = curveEvery
        self.baseCheckpoint = baseCheckpoint
    }
}

/// Replays an update stream file: one pass over the records, with the engine's state
/// as the only memory that scales with the model.
public enum StreamReplay {
    /// Number of curve points when `--every` is not given.
    public static let defaultCurvePoints = 50

    /// What the error says when a stream has no BASE record and no base checkpoint was
    /// given (`StreamReplayOptions.baseCheckpoint`).
    public static let missingBaseExplanation = "the stream has no BASE record, so the base weights must come from "
        + "elsewhere: a base checkpoint (a safetensors file or directory whose tensor names and shapes match)"

    /// - Parameter progress: called after each step with (steps done, steps in total).
    public static func run(
        path: String, configuration: ReplayConfiguration, options: StreamReplayOptions = StreamReplayOptions(),
        progress: ((Int, Int) -> Void)? = nil
    ) throws -> ReplayResult {
        try runKeepingState(path: path, configuration: configuration, options: options, progress: progress).result
    }

    /// As `run`, also returning the engine so callers can read the final weights.
    public static func runKeepingState(
        path: String, configuration: ReplayConfiguration, options: StreamReplayOptions = StreamReplayOptions(),
        progress: ((Int, Int) -> Void)? = nil
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
        var stepsDone = 0
        let summary = try reader.forEachRecord { record in
            switch record.kind {
            case .base:
                if engine == nil {
                    engine = try ReplayEngine(tensors: tensors, base: record.values, configuration: configuration)
                }
            case .step:
                guard let engine else {
                    throw PrecLabError.badData(file: path, offset: record.offset, "STEP before any base weights")
                }
                stepsDone += 1
                let recordPoint = stepsDone % every == 0 || stepsDone == totalSteps
                try engine.apply(step: record.step, delta: record.values, recordCurvePoint: recordPoint)
                progress?(stepsDone, totalSteps)
            case .final:
                guard let engine else { return }
                do {
                    try engine.verifyFinal(record.values)
                } catch let error as PrecLabError {
                    throw PrecLabError.badData(file: path, offset: record.offset, error.description)
                }
            }
        }
        guard let engine else {
            throw PrecLabError.badData("\(path): the stream holds no records")
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
        if !summary.hasFinal {
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
