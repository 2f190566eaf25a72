import PrecLabFormats
import PrecLabSupport

/// Replays fp32 updates under every configured storage policy at once.
///
/// The engine holds only state (base, fp32 truth, one code buffer per stored policy),
/// so its memory does not grow with the number of steps. Each `apply` makes one fused
/// pass over the elements, split into fixed work units run on all cores; counts for the
/// per-step curve are taken in that same pass when asked for.
public final class ReplayEngine: @unchecked Sendable {
    public let tensors: [ReplayTensor]
    public let configuration: ReplayConfiguration
    private let core: ReplayCoreBox
    private var curve: [CurvePoint] = []
    private var stepsApplied = 0
    private var firstStep: UInt64?
    private var lastStep: UInt64?
    private var finalVerified = false
    /// The null model's replay (the same stream with permuted update positions), run
    /// step by step beside this one; nil without `configuration.nullModel`.
    public let nullEngine: ReplayEngine?
    private let nullPermutation: NullPermutation?
    private var nullScratch: [Float] = []

    /// - Parameters:
    ///   - tensors: names and shapes, in the order of the flat buffers.
    ///   - base: the weights before the first step, all tensors concatenated.
    public init(tensors: [ReplayTensor], base: UnsafeBufferPointer<Float>,
                configuration: ReplayConfiguration) throws {
        let total = tensors.reduce(0) { $0 + $1.count }
        guard base.count == total else {
            throw PrecLabError.badData("base weights hold \(base.count) values, the tensors need \(total)")
        }
        self.tensors = tensors
        self.configuration = configuration
        if BFloat16Codec.applies(to: configuration) {
            core = .bfloat16(TypedReplayCore(codec: BFloat16Codec(configuration: configuration),
                                             tensors: tensors, base: base, configuration: configuration))
        } else if configuration.format.storageBytes == 1 {
            core = .byte(TypedReplayCore(codec: GenericCodec<UInt8>(configuration: configuration),
                                         tensors: tensors, base: base, configuration: configuration))
        } else if configuration.format.storageBytes <= 2 {
            core = .narrow(TypedReplayCore(codec: GenericCodec<UInt16>(configuration: configuration),
                                           tensors: tensors, base: base, configuration: configuration))
        } else {
            core = .wide(TypedReplayCore(codec: GenericCodec<UInt32>(configuration: configuration),
                                         tensors: tensors, base: base, configuration: configuration))
        }
        if let kind = configuration.nullModel {
            var inner = configuration
            inner.nullModel = nil
            nullEngine = try ReplayEngine(tensors: tensors, base: base, configuration: inner)
            nullPermutation = NullPermutation(kind: kind, tensors: tensors, seed: configuration.seed)
            nullScratch = [Float](repeating: 0, count: total)
        } else {
            nullEngine = nil
            nullPermutation = nil
        }
    }

    /// The typed state, for white-box tests.
    var testingCore: AnyObject { core.object }

    /// Total number of elements across tensors.
    public var elementCount: Int { tensors.reduce(0) { $0 + $1.count } }

    /// Applies one optimizer step's updates (all tensors concatenated, fp32).
    /// - Parameter recordCurvePoint: also count changed and visible entries for the
    ///   per-step curve, in the same pass.
    public func apply(step: UInt64, delta: UnsafeBufferPointer<Float>, recordCurvePoint: Bool) throws {
        guard delta.count == elementCount else {
            throw PrecLabError.badData("step \(step): update holds \(delta.count) values, expected \(elementCount)")
        }
        let counts = core.apply(step: step, delta: delta, count: recordCurvePoint)
        if let nullEngine, let nullPermutation {
            nullPermutation.permuted(delta, into: &nullScratch, threads: configuration.threads)
            try nullScratch.withUnsafeBufferPointer { try nullEngine.apply(step: step, delta: $0, recordCurvePoint: false) }
        }
        if let counts { curve.append(CurvePoint(step: step, trueChanged: counts.trueChanged,
                                                visibleChanged: counts.visible)) }
        stepsApplied += 1
        if firstStep == nil { firstStep = step }
        lastStep = step
    }

    /// Checks the fp32 replay against a FINL record, bit for bit.
    /// Throws bad data naming the first differing element.
    public func verifyFinal(_ final: UnsafeBufferPointer<Float>) throws {
        guard final.count == elementCount else {
            throw PrecLabError.badData("FINL holds \(final.count) values, expected \(elementCount)")
        }
        if let mismatch = core.firstTruthMismatch(final) {
            let tensor = tensors[mismatch.tensor]
            let position = ReplayEngine.describe(index: mismatch.index, shape: tensor.shape)
            throw PrecLabError.badData(
                "the fp32 replay does not reproduce FINL: tensor '\(tensor.name)' element \(position): "
                    + "replayed \(mismatch.replayed) (0x\(hex(mismatch.replayed.bitPattern))), "
                    + "FINL \(mismatch.recorded) (0x\(hex(mismatch.recorded.bitPattern)))")
        }
        finalVerified = true
    }

    /// The measured metrics of every tensor and policy.
    public func finish(warnings: [String] = []) -> ReplayResult {
        var allWarnings = warnings
        var results = core.finish()
        if let nullEngine {
            let nullResults = nullEngine.finish().tensors
            for index in results.indices {
                let policies = nullResults[index].policies
                results[index].nullPolicies = policies
                results[index].nullModel = policies[.master].map {
                    NullModelMetrics(visibleChanged: $0.visibleChanged, visibleInLowMagnitude: $0.visibleInLowMagnitude,
                                     visibleByMagnitude: $0.visibleByMagnitude)
                }
            }
        }
        if let warning = ReplayEngine.nonFiniteWarning(results) { allWarnings.append(warning) }
        return ReplayResult(configuration: configuration, steps: stepsApplied, firstStep: firstStep,
                            lastStep: lastStep, tensors: results, curve: curve,
                            warnings: allWarnings, finalVerified: finalVerified)
    }

    /// The warning naming the tensors whose updates held NaN or Inf (nil when none did);
    /// the last warning of a result, rebuilt by `preclab merge` over all shards.
    public static func nonFiniteWarning(_ results: [TensorReplayResult]) -> String? {
        let nonFinite = results.filter { $0.nanUpdates + $0.infiniteUpdates > 0 }
        guard !nonFinite.isEmpty else { return nil }
        let list = nonFinite.map { "\($0.tensor.name) (\($0.nanUpdates) NaN, \($0.infiniteUpdates) Inf)" }
        return "non-finite values in updates: " + list.joined(separator: ", ")
    }

    /// W0 and W_T of a tensor under a policy (after the last `apply`), for spectral
    /// comparisons of what each storage policy did to the weights.
    public func weightsBeforeAndAfter(_ policy: ReplayPolicy, tensor: Int) -> ReplayWeights {
        switch core {
        case .bfloat16(let core): return core.weightsBeforeAndAfter(policy, tensor: tensor)
        case .byte(let core): return core.weightsBeforeAndAfter(policy, tensor: tensor)
        case .narrow(let core): return core.weightsBeforeAndAfter(policy, tensor: tensor)
        case .wide(let core): return core.weightsBeforeAndAfter(policy, tensor: tensor)
        }
    }

    /// "[i, j]" for a row-major flat index.
    static func describe(index: Int, shape: [Int]) -> String {
        var remaining = index
        var coordinates = Array(repeating: 0, count: shape.count)
        for axis in shape.indices.reversed() {
            coordinates[axis] = remaining % max(shape[axis], 1)
            remaining /= max(shape[axis], 1)
        }
        return "[" + coordinates.map(String.init).joined(separator: ", ") + "] (flat \(index))"
    }
}

func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: 8 - digits.count) + digits
}

/// A tensor's weights before and after a replay under one policy, row-major, with the
/// entries whose stored bits changed.
public struct ReplayWeights: Sendable {
    public var before: [Double]
    public var after: [Double]
    public var changed: [Bool]
}

/// Per-tensor counts of one curve point.
struct CurveCounts {
    var trueChanged: [Int]
    var visible: [ReplayPolicy: [Int]]
}

struct TruthMismatch {
    let tensor: Int
    let index: Int
    let replayed: Float
    let recorded: Float
}

/// The replay state for each codec the engine picks. A closed enum rather than an
/// existential so that every call site names a concrete codec and the optimizer
/// specialises the step kernels (through a protocol they ran about 50x slower).
enum ReplayCoreBox {
    case bfloat16(TypedReplayCore<BFloat16Codec>)
    case byte(TypedReplayCore<GenericCodec<UInt8>>)
    case narrow(TypedReplayCore<GenericCodec<UInt16>>)
    case wide(TypedReplayCore<GenericCodec<UInt32>>)

    var object: AnyObject {
        switch self {
        case .bfloat16(let core): return core
        case .byte(let core): return core
        case .narrow(let core): return core
        case .wide(let core): return core
        }
    }

    func apply(step: UInt64, delta: UnsafeBufferPointer<Float>, count: Bool) -> CurveCounts? {
        switch self {
        case .bfloat16(let core): return core.apply(step: step, delta: delta, count: count)
        case .byte(let core): return core.apply(step: step, delta: delta, count: count)
        case .narrow(let core): return core.apply(step: step, delta: delta, count: count)
        case .wide(let core): return core.apply(step: step, delta: delta, count: count)
        }
    }

    func firstTruthMismatch(_ final: UnsafeBufferPointer<Float>) -> TruthMismatch? {
        switch self {
        case .bfloat16(let core): return core.firstTruthMismatch(final)
        case .byte(let core): return core.firstTruthMismatch(final)
        case .narrow(let core): return core.firstTruthMismatch(final)
        case .wide(let core): return core.firstTruthMismatch(final)
        }
    }

    func finish() -> [TensorReplayResult] {
        switch self {
        case .bfloat16(let core): return core.finish()
        case .byte(let core): return core.finish()
        case .narrow(let core): return core.finish()
        case .wide(let core): return core.finish()
        }
    }
}
