import PrecLabFiles
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
    /// Per tile length (in elements), the operator joining a tile's CRC piece to the
    /// ones before it (`applyAll(payloadCRCs:)`), built once per replay.
    private var crcAppenders: [Int: CRC32.Appender] = [:]
    private var curve: [CurvePoint] = []
    private var stepsApplied = 0
    private var firstStep: UInt64?
    private var lastStep: UInt64?
    private var finalVerified = false
    /// The null model's replay (the same stream with permuted update positions), run
    /// step by step beside this one through the same tile-major path; nil without
    /// `configuration.nullModel`.
    public let nullEngine: ReplayEngine?
    private let nullPermutation: NullPermutation?
    private var nullScratch: [Float] = []
    private var finalMismatches: FinalMismatches?
    /// The step number of every applied step, for the step-level views.
    private var stepNumbers: [UInt64] = []

    /// - Parameters:
    ///   - tensors: names and shapes, in the order of the flat buffers.
    ///   - base: the weights before the first step, all tensors concatenated.
    public init(tensors: [ReplayTensor], base: UnsafeBufferPointer<Float>,
                configuration: ReplayConfiguration) throws {
        let total = tensors.reduce(0) { $0 + $1.count }
        guard base.count == total else {
            throw PrecLabError.badData("base weights hold \(base.count) values, the tensors need \(total)")
        }
        // The whole state is allocated up front; refuse what cannot fit before touching it.
        try ResourceBudget.requireMemory(
            ReplayEngine.stateBytes(elements: total, configuration: configuration) ?? Int.max,
            for: "replaying \(total) weights under \(configuration.policies.map(\.rawValue).joined(separator: ","))"
                + (configuration.nullModel != nil ? " with the null model" : ""))
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
            // The null run feeds the null metrics only; step views stay the real run's.
            inner.stepViews = false
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
        try applyAll([RecordedStep(step: step, delta: delta, curvePoint: recordCurvePoint)])
    }

    /// Applies a sequence of steps tile-major: every tile of every tensor runs through
    /// all the steps before the next tile starts, so the policies' state stays in cache
    /// and only the updates stream from memory. The results are bit-identical to
    /// applying the steps one at a time.
    /// - Parameters:
    ///   - progress: called as tiles finish with (tiles done, tiles in total).
    ///   - release: called with flat element ranges (increasing, disjoint) that every
    ///     step is done with, so a caller replaying a mapped stream can drop those pages.
    ///
    /// With `payloadCRCs` (as many slots as steps) each step's CRC-32 of its update bytes
    /// (`4 * elementCount` of them) is written there, computed piece by piece as the
    /// tiles read the updates: a stream's CRCs checked without a second pass over it.
    public func applyAll(_ steps: [RecordedStep], progress: (@Sendable (Int, Int) -> Void)? = nil,
                         release: (@Sendable (Range<Int>) -> Void)? = nil,
                         payloadCRCs: UnsafeMutableBufferPointer<UInt32>? = nil) throws {
        for recorded in steps where recorded.delta.count != elementCount {
            throw PrecLabError.badData(
                "step \(recorded.step): update holds \(recorded.delta.count) values, expected \(elementCount)")
        }
        guard !steps.isEmpty else { return }
        // The null run goes first, one permuted step at a time (one scratch update of
        // memory), while the recorded updates are still mapped: the real run below may
        // release their pages as its tiles finish.
        if let nullEngine, let nullPermutation {
            for recorded in steps {
                nullPermutation.permuted(recorded.delta, into: &nullScratch, threads: configuration.threads)
                try nullScratch.withUnsafeBufferPointer {
                    try nullEngine.applyAll([RecordedStep(step: recorded.step, delta: $0, curvePoint: false)])
                }
            }
        }
        let inputs = steps.map { StepInput(step: $0.step, delta: $0.delta.baseAddress!, curvePoint: $0.curvePoint) }
        precondition(payloadCRCs.map { $0.count == steps.count } ?? true, "one CRC slot per step")
        let units = core.units
        let pieces = payloadCRCs.map { _ in OwnedBuffer<UInt32>(repeating: 0, count: steps.count * units.count) }
        defer { pieces?.release() }
        let points = core.run(steps: inputs, progress: progress, release: release, pieceCRCs: pieces)
        if let payloadCRCs, let pieces {
            // The units tile the elements in order, so the pieces join in unit order.
            for unit in units where crcAppenders[unit.range.count] == nil {
                crcAppenders[unit.range.count] = CRC32.Appender(length: 4 * unit.range.count)
            }
            let appenders = units.map { crcAppenders[$0.range.count]! }
            for stepIndex in steps.indices {
                var crc: UInt32 = 0  // the CRC of no bytes
                for (unitIndex, appender) in appenders.enumerated() {
                    crc = appender.combine(crc, pieces[stepIndex * units.count + unitIndex])
                }
                payloadCRCs[stepIndex] = crc
            }
        }
        for (recorded, counts) in zip(steps.filter(\.curvePoint), points) {
            curve.append(CurvePoint(step: recorded.step, trueChanged: counts.trueChanged,
                                    visibleChanged: counts.visible))
        }
        stepNumbers += steps.map(\.step)
        stepsApplied += steps.count
        if firstStep == nil { firstStep = steps.first!.step }
        lastStep = steps.last!.step
    }

    /// Checks the fp32 replay against a FINL record, bit for bit.
    /// Throws bad data naming the first differing element.
    public func verifyFinal(_ final: UnsafeBufferPointer<Float>) throws {
        let mismatches = try checkFinal(final)
        if let first = mismatches.first {
            throw PrecLabError.badData(
                "the fp32 replay does not reproduce FINL: \(mismatches.count) element(s) differ, at most "
                    + "\(mismatches.maxULPDistance) ULP; first: tensor '\(first.tensor)' element \(first.position): "
                    + "replayed \(first.replayed) (0x\(hex(first.replayed.bitPattern))), "
                    + "FINL \(first.recorded) (0x\(hex(first.recorded.bitPattern)))")
        }
    }

    /// Compares the fp32 replay with a FINL record and keeps the comparison for the
    /// result (`finl_mismatches`); mismatches are a fact about the stream, not an error.
    @discardableResult
    public func checkFinal(_ final: UnsafeBufferPointer<Float>) throws -> FinalMismatches {
        guard final.count == elementCount else {
            throw PrecLabError.badData("FINL holds \(final.count) values, expected \(elementCount)")
        }
        let found = core.truthMismatches(final)
        let first = found.first.map { mismatch -> FinalMismatches.Example in
            let tensor = tensors[mismatch.tensor]
            return FinalMismatches.Example(tensor: tensor.name, index: mismatch.index,
                                           position: ReplayEngine.describe(index: mismatch.index, shape: tensor.shape),
                                           replayed: mismatch.replayed, recorded: mismatch.recorded)
        }
        let mismatches = FinalMismatches(count: found.count, maxULPDistance: found.maxULP, first: first)
        finalMismatches = mismatches
        finalVerified = mismatches.count == 0
        return mismatches
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
        if let warning = ReplayEngine.finalMismatchWarning(finalMismatches) { allWarnings.append(warning) }
        if let warning = ReplayEngine.nonFiniteWarning(results) { allWarnings.append(warning) }
        return ReplayResult(configuration: configuration, steps: stepsApplied, firstStep: firstStep,
                            lastStep: lastStep, tensors: results, curve: curve,
                            warnings: allWarnings, finalVerified: finalVerified,
                            finalMismatches: finalMismatches, stepViews: core.stepViews(steps: stepNumbers))
    }

    /// Bytes of state a replay of `elements` weights holds (docs/replay.md, "Memory"):
    /// W0 and the truth (4 + 4), the stored base and one code buffer per stored policy (two
    /// for Kahan), the "left I" bit, one byte per element for the final analysis, and the
    /// null model's second engine, permutation and permuted update. Nil on overflow.
    public static func stateBytes(elements: Int, configuration: ReplayConfiguration) -> Int? {
        let s = configuration.format.storageBytes
        var perElement8 = 8 * (4 + 4 + s + 1) + 1  // in eighths of a byte: the left-I bit
        if configuration.runs(.pure) { perElement8 += 8 * s }
        if configuration.runs(.stochastic) { perElement8 += 8 * s }
        if configuration.runs(.kahan) { perElement8 += 8 * 2 * s }
        if configuration.nullModel != nil { perElement8 = 2 * perElement8 + 8 * 12 }
        return ResourceBudget.product(elements, perElement8).map { ($0 + 7) / 8 }
    }

    /// The warning explaining a FINL record that the fp32 replay does not reproduce (nil
    /// when it does); rebuilt by `preclab merge` from the shards' combined mismatches.
    public static func finalMismatchWarning(_ mismatches: FinalMismatches?) -> String? {
        guard let mismatches, let first = mismatches.first else { return nil }
        return "FINL differs from the fp32 replay in \(mismatches.count) element(s), at most "
            + "\(mismatches.maxULPDistance) ULP (first: tensor '\(first.tensor)' element \(first.position), "
            + "replayed \(first.replayed), FINL \(first.recorded)). The stream's deltas were probably "
            + "taken as after - before in fp32, which is inexact, so they do not sum back to FINL "
            + "(tools/preclab_record.py takes them from the replayed weights and avoids it); "
            + "the replay uses the deltas as recorded. A strict replay treats this as an error"
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

/// One recorded step: its number, its update (all tensors concatenated, fp32) and
/// whether the per-step curve takes a point after it.
public struct RecordedStep: @unchecked Sendable {
    public var step: UInt64
    public var delta: UnsafeBufferPointer<Float>
    public var curvePoint: Bool

    public init(step: UInt64, delta: UnsafeBufferPointer<Float>, curvePoint: Bool) {
        self.step = step
        self.delta = delta
        self.curvePoint = curvePoint
    }
}

/// How a FINL record compares with the fp32 replay.
public struct FinalMismatches: Sendable, Equatable, Codable {
    public struct Example: Sendable, Equatable, Codable {
        public var tensor: String
        /// Flat index within the tensor, and its "[i, j] (flat k)" spelling.
        public var index: Int
        public var position: String
        public var replayed: Float
        public var recorded: Float
    }
    /// Elements whose bits differ.
    public var count: Int
    /// The largest distance in ULPs (`ulpDistance`); 0 when nothing differs.
    public var maxULPDistance: UInt64
    /// The first differing element in tensor order.
    public var first: Example?
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

    /// The work units (tiles), in element order.
    var units: [WorkUnit] {
        switch self {
        case .bfloat16(let core): return core.units
        case .byte(let core): return core.units
        case .narrow(let core): return core.units
        case .wide(let core): return core.units
        }
    }

    func run(steps: [StepInput], progress: (@Sendable (Int, Int) -> Void)?,
             release: (@Sendable (Range<Int>) -> Void)?, pieceCRCs: OwnedBuffer<UInt32>?) -> [CurveCounts] {
        switch self {
        case .bfloat16(let core): return core.run(steps: steps, progress: progress, release: release, pieceCRCs: pieceCRCs)
        case .byte(let core): return core.run(steps: steps, progress: progress, release: release, pieceCRCs: pieceCRCs)
        case .narrow(let core): return core.run(steps: steps, progress: progress, release: release, pieceCRCs: pieceCRCs)
        case .wide(let core): return core.run(steps: steps, progress: progress, release: release, pieceCRCs: pieceCRCs)
        }
    }

    func truthMismatches(_ final: UnsafeBufferPointer<Float>) -> (count: Int, maxULP: UInt64, first: TruthMismatch?) {
        switch self {
        case .bfloat16(let core): return core.truthMismatches(final)
        case .byte(let core): return core.truthMismatches(final)
        case .narrow(let core): return core.truthMismatches(final)
        case .wide(let core): return core.truthMismatches(final)
        }
    }

    func stepViews(steps: [UInt64]) -> StepViews? {
        switch self {
        case .bfloat16(let core): return core.stepViews(steps: steps)
        case .byte(let core): return core.stepViews(steps: steps)
        case .narrow(let core): return core.stepViews(steps: steps)
        case .wide(let core): return core.stepViews(steps: steps)
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
