import PrecLabFiles
import PrecLabFormats
import PrecLabSpectral
import PrecLabSupport

/// What `compareCheckpoints` measures: the storage format the weights are compared in,
/// the spectral settings of [P] and the tensors looked at.
public struct CheckpointComparisonOptions: Sendable, Codable {
    /// Both checkpoints are brought to this format (nearest-even) before comparing.
    public var format: FloatFormat
    public var spectral: SpectralOptions
    public var selection: TensorSelection
    /// Count a change between +0 and -0 as an update (bit inequality); by default it is
    /// none, as Def. 2.1 of [P] counts "both zero" as unchanged.
    public var signedZeroChanges: Bool

    public init(format: FloatFormat = .bf16, spectral: SpectralOptions = SpectralOptions(),
                selection: TensorSelection = .all, signedZeroChanges: Bool = false) {
        self.format = format
        self.spectral = spectral
        self.selection = selection
        self.signedZeroChanges = signedZeroChanges
    }
}

/// A tensor left out of a comparison, with the reason (never a silent omission).
public struct SkippedTensor: Sendable, Equatable, Codable {
    /// How much of the tensor is missing from the result.
    public enum Scope: String, Sendable, Codable {
        /// Not compared at all (missing on one side, shape mismatch, not floating point).
        case tensor
        /// Sparsity only: no spectral metrics (not 2-D, empty, NaN or Inf).
        case spectral
    }

    public let name: String
    public let scope: Scope
    public let reason: String

    public init(name: String, scope: Scope, reason: String) {
        self.name = name
        self.scope = scope
        self.reason = reason
    }
}

/// One compared tensor: update sparsity in the comparison format and, for finite 2-D
/// tensors, the spectral metrics of W0 -> W1.
public struct ComparedTensor: Sendable, Codable {
    public let name: TensorName
    public let shape: [Int]
    public let baseDType: String
    public let tunedDType: String
    public let params: Int
    /// Elements whose codes differ.
    public let changed: Int
    /// Whether either side was stored in another format and converted.
    public let converted: Bool
    public let comparison: MatrixComparison?
    /// Changes hidden by the comparison format (nil unless both inputs are wider).
    public let precision: PrecisionHiddenChanges?
    /// Why the spectral metrics are missing, when they are.
    public let spectralNote: String?

    /// Fraction of elements whose codes are bit-for-bit equal.
    public var sparsity: Double { params == 0 ? 1 : Double(params - changed) / Double(params) }
}

/// The metrics averaged (parameter-weighted) in a comparison's totals and per-type
/// summaries; the raw value is the JSON key. Every overlap comes with its random and
/// its magnitude-stratified baseline.
public enum ComparisonMetric: String, CaseIterable, Sendable {
    case nss
    case angleUMax = "angle_u_max_deg"
    case angleVMax = "angle_v_max_deg"
    case angleUMean = "angle_u_mean_deg"
    case angleVMean = "angle_v_mean_deg"
    case principalOverlap = "principal_overlap"
    case principalOverlapRandom = "principal_overlap_random"
    case principalOverlapMagnitude = "principal_overlap_magnitude"
    case lowOverlap = "low_overlap"
    case lowOverlapRandom = "low_overlap_random"
    case lowOverlapMagnitude = "low_overlap_magnitude"
    case controlOverlap = "control_overlap"
    case controlOverlapRandom = "control_overlap_random"
    case controlOverlapMagnitude = "control_overlap_magnitude"
    case energyTopK = "energy_top_k"

    public func value(_ comparison: MatrixComparison) -> Double? {
        switch self {
        case .nss: return comparison.nss
        case .angleUMax: return comparison.angleUMaxDegrees
        case .angleVMax: return comparison.angleVMaxDegrees
        case .angleUMean: return comparison.angleUMeanDegrees
        case .angleVMean: return comparison.angleVMeanDegrees
        case .principalOverlap: return comparison.principalOverlap
        case .principalOverlapRandom: return comparison.principalOverlapRandom
        case .principalOverlapMagnitude: return comparison.principalOverlapMagnitude
        case .lowOverlap: return comparison.lowOverlap
        case .lowOverlapRandom: return comparison.lowOverlapRandom
        case .lowOverlapMagnitude: return comparison.lowOverlapMagnitude
        case .controlOverlap: return comparison.controlOverlap
        case .controlOverlapRandom: return comparison.controlOverlapRandom
        case .controlOverlapMagnitude: return comparison.controlOverlapMagnitude
        case .energyTopK: return comparison.energyTopK
        }
    }
}

/// The result of comparing two checkpoints tensor by tensor (`preclab compare`).
public struct CheckpointComparison: Sendable {
    public let basePath: String
    public let tunedPath: String
    public let options: CheckpointComparisonOptions
    /// Compared tensors in report order (`TensorName`).
    public let tensors: [ComparedTensor]
    /// Tensors not compared, and tensors with sparsity only.
    public let skipped: [SkippedTensor]

    /// Compares `base` with `tuned`.
    /// - Parameter labels: how reports and messages name the two checkpoints (default:
    ///   their paths; a directory opens as its index file).
    /// - Throws: `PrecLabError` data errors for unreadable tensors and when no tensor
    ///   can be compared at all.
    public init(base: Checkpoint, tuned: Checkpoint, options: CheckpointComparisonOptions = .init(),
                progress: (any ProgressReporting)? = nil, labels: (base: String, tuned: String)? = nil) throws {
        basePath = labels?.base ?? base.path
        tunedPath = labels?.tuned ?? tuned.path
        self.options = options
        let plan = CheckpointComparison.pair(base: base, tuned: tuned, selection: options.selection)
        var skipped = plan.skipped
        // A shard may hold only tensors that cannot be compared; `preclab merge` checks the whole.
        if plan.pairs.isEmpty && options.selection.shardNames == nil {
            var message = "nothing to compare between \(basePath) and \(tunedPath)"
            if let pattern = options.selection.pattern {
                message += " (the tensor pattern '\(pattern)' matched \(skipped.count) tensor(s) that cannot be compared)"
            }
            if !skipped.isEmpty {
                message += ": " + skipped.prefix(10).map { "\($0.name): \($0.reason)" }.joined(separator: "; ")
                if skipped.count > 10 { message += "; and \(skipped.count - 10) more" }
            }
            throw PrecLabError.badData(message)
        }
        try CheckpointComparison.requireMemory(plan.pairs.map(\.0))
        let rows = try CheckpointComparison.compare(plan.pairs, base: base, tuned: tuned, options: options,
                                                    progress: progress)
        skipped += CheckpointComparison.spectralSkips(rows)
        tensors = rows
        self.skipped = skipped
    }

    /// The sparsity-only tensors, in row order (listed after the tensors not compared).
    static func spectralSkips(_ rows: [ComparedTensor]) -> [SkippedTensor] {
        rows.compactMap { row in row.spectralNote.map { SkippedTensor(name: row.name.name, scope: .spectral, reason: $0) } }
    }

    /// A comparison put together from its parts (`preclab merge`).
    init(basePath: String, tunedPath: String, options: CheckpointComparisonOptions, tensors: [ComparedTensor],
         skipped: [SkippedTensor]) {
        self.basePath = basePath
        self.tunedPath = tunedPath
        self.options = options
        self.tensors = tensors
        self.skipped = skipped
    }

    /// Opens both checkpoints (files, sharded index files or directories) and compares them.
    public init(basePath: String, tunedPath: String, options: CheckpointComparisonOptions = .init(),
                progress: (any ProgressReporting)? = nil) throws {
        try self.init(base: try Checkpoint.open(basePath), tuned: try Checkpoint.open(tunedPath), options: options,
                      progress: progress, labels: (basePath, tunedPath))
    }

    /// Parameter-weighted summary of `selected` tensors.
    public func summary(_ selected: [ComparedTensor]) -> WeightedSummary<ComparisonMetric> {
        var summary = WeightedSummary<ComparisonMetric>()
        for row in selected {
            summary.add(parameters: row.params, changed: row.changed,
                        metrics: ComparisonMetric.allCases.map { ($0, row.comparison.flatMap($0.value)) })
        }
        return summary
    }

    /// Summary over every compared tensor.
    public var total: WeightedSummary<ComparisonMetric> { summary(tensors) }

    /// The matrix types present, in report order.
    public var types: [MatrixType] {
        MatrixType.allCases.filter { type in tensors.contains { $0.name.type == type } }
    }

    /// Summary of the tensors of one matrix type.
    public func summary(of type: MatrixType) -> WeightedSummary<ComparisonMetric> {
        summary(tensors.filter { $0.name.type == type })
    }

    /// Precision-hidden changes summed over the `selected` tensors that have them (nil
    /// when none does: an input is already in the comparison format).
    public func precisionTotal(_ selected: [ComparedTensor]) -> PrecisionHiddenChanges? {
        let measured = selected.compactMap(\.precision)
        guard !measured.isEmpty else { return nil }
        var total = PrecisionHiddenChanges()
        for tally in measured { total.add(tally) }
        return total
    }

    /// Precision-hidden changes over every compared tensor.
    public var precisionTotal: PrecisionHiddenChanges? { precisionTotal(tensors) }

    /// Measured values above a perturbation bound (a numerical problem when not empty).
    public var boundViolations: [(tensor: String, bound: String)] {
        tensors.flatMap { row in (row.comparison?.boundViolations ?? []).map { (row.name.name, $0) } }
    }

    /// Pairs tensors by name; everything that cannot be compared becomes a skip.
    static func pair(base: Checkpoint, tuned: Checkpoint, selection: TensorSelection)
        -> (pairs: [(CheckpointTensor, CheckpointTensor)], skipped: [SkippedTensor])
    {
        var pairs: [(CheckpointTensor, CheckpointTensor)] = []
        var skipped: [SkippedTensor] = []
        for tensor in base.tensors where selection.includes(tensor.name) {
            guard let other = tuned.tensor(named: tensor.name) else {
                skipped.append(SkippedTensor(name: tensor.name, scope: .tensor, reason: "missing in TUNED"))
                continue
            }
            if tensor.shape != other.shape {
                skipped.append(SkippedTensor(name: tensor.name, scope: .tensor,
                                             reason: "shape \(shapeText(tensor.shape)) in BASE vs \(shapeText(other.shape)) in TUNED"))
                continue
            }
            if let reason = TensorCodes.unsupportedReason(tensor.dtype) ?? TensorCodes.unsupportedReason(other.dtype) {
                skipped.append(SkippedTensor(name: tensor.name, scope: .tensor, reason: reason))
                continue
            }
            pairs.append((tensor, other))
        }
        for tensor in tuned.tensors where selection.includes(tensor.name) && base.tensor(named: tensor.name) == nil {
            skipped.append(SkippedTensor(name: tensor.name, scope: .tensor, reason: "missing in BASE"))
        }
        return (pairs, skipped)
    }

    /// Estimated bytes per weight of one matrix under comparison: W0 and W1 in float64
    /// (16), ΔW (8), LAPACK's copy, U, Vᵀ and dgesdd's workspace for each SVD (about 64),
    /// the kept factors and the rank-r reconstruction (about 40). Vectors need the float64
    /// copies only. Large matrices are compared one at a time (SpectralScheduler).
    public static let matrixBytesPerWeight = 128
    public static let vectorBytesPerWeight = 24

    /// Refuses (bad data, with the numbers) a comparison whose largest tensor cannot fit
    /// in the memory available, before any tensor is decoded.
    static func requireMemory(_ tensors: [CheckpointTensor]) throws {
        guard let largest = tensors.max(by: { $0.info.elementCount < $1.info.elementCount }) else { return }
        let perWeight = largest.shape.count == 2 ? matrixBytesPerWeight : vectorBytesPerWeight
        try ResourceBudget.requireMemory(
            ResourceBudget.product(largest.info.elementCount, perWeight) ?? Int.max,
            for: "comparing tensor '\(largest.name)' (\(largest.info.elementCount) weights, about \(perWeight) bytes each)")
    }

    /// Runs every pair through the spectral scheduler (small matrices in parallel, large
    /// ones one at a time with a fixed BLAS thread count).
    static func compare(_ pairs: [(CheckpointTensor, CheckpointTensor)], base: Checkpoint, tuned: Checkpoint,
                        options: CheckpointComparisonOptions,
                        progress: (any ProgressReporting)?) throws -> [ComparedTensor] {
        let shapes = pairs.map { pair -> (rows: Int, columns: Int) in
            let shape = pair.0.shape
            return shape.count == 2 ? (shape[0], shape[1]) : (1, pair.0.info.elementCount)
        }
        let work = pairs.indices.map { index -> Double in
            let (m, n) = shapes[index]
            let elements = Double(m) * Double(n)
            return pairs[index].0.shape.count == 2 ? elements * Double(min(m, n)) / 64 + elements : elements
        }
        progress?.begin("compare", work: work)
        let slots = Slots<Result<ComparedTensor, PrecLabError>>(count: pairs.count)
        let shared = UnsafeSendable((pairs, base, tuned, options))
        SpectralScheduler.run(shapes: shapes) { index in
            let (pairs, base, tuned, options) = shared.value
            let threads = BLASThreads.isSmall(rows: shapes[index].rows, columns: shapes[index].columns)
                ? 1 : ParallelChunks.threadCount
            let result: Result<ComparedTensor, PrecLabError>
            do {
                result = .success(try compareTensor(pairs[index].0, pairs[index].1, base: base, tuned: tuned,
                                                    options: options, threads: threads))
            } catch let error as PrecLabError {
                result = .failure(error)
            } catch {
                result = .failure(.badData("\(pairs[index].0.name): \(error)"))
            }
            slots.set(index, result)
            progress?.finished(pairs[index].0.name, work: work[index])
        }
        progress?.end()
        var rows: [ComparedTensor] = []
        for result in slots.values {
            switch result {
            case .success(let row): rows.append(row)
            case .failure(let error): throw error
            }
        }
        return rows.sorted { $0.name < $1.name }
    }

    static func compareTensor(_ a: CheckpointTensor, _ b: CheckpointTensor, base: Checkpoint, tuned: Checkpoint,
                              options: CheckpointComparisonOptions, threads: Int) throws -> ComparedTensor {
        let format = options.format
        let codesA = try TensorCodes.load(base, a, as: format, threads: threads)
        let codesB = try TensorCodes.load(tuned, b, as: format, threads: threads)
        let shape = a.shape
        let params = a.info.elementCount
        var comparison: MatrixComparison? = nil
        var note: String? = nil
        let changed: Int
        let zeroSign = TensorCodes.zeroSignBit(format: format, signedZeroChanges: options.signedZeroChanges)
        // Wide inputs (both wider than the format): what the format hides.
        var precision: PrecisionHiddenChanges? = nil
        let wide = SourceValues.isWider(a.dtype, than: format) && SourceValues.isWider(b.dtype, than: format)
        // One update mask per tensor, shared by the precision tally and the spectral metrics.
        let storedMask = wide || (shape.count == 2 && params > 0)
            ? codesA.differingMask(codesB, zeroSignBit: zeroSign, threads: threads) : nil
        if wide, let mask = storedMask {
            let sourceA = SourceValues(base, a), sourceB = SourceValues(tuned, b)
            precision = PrecisionHiddenChanges(count: params, base: { sourceA[$0] }, tuned: { sourceB[$0] },
                                               halfULP: { codesA.halfULP($0, format: format) }, storedMask: mask,
                                               signedZeroChanges: options.signedZeroChanges)
        }
        if shape.count == 2 && params > 0, let mask = storedMask {
            changed = mask.population
            let w0 = codesA.matrix(rows: shape[0], columns: shape[1], format: format, threads: threads)
            let w1 = codesB.matrix(rows: shape[0], columns: shape[1], format: format, threads: threads)
            if w0.isFinite && w1.isFinite {
                do {
                    comparison = try MatrixComparison(
                        base: w0, tuned: w1, updateMask: mask,
                        strata: MagnitudeStrata(storedMatrix: w0, minimumNormal: format.minNormal),
                        options: options.spectral)
                } catch let error as PrecLabError {
                    throw PrecLabError.badData("tensor '\(a.name)': \(error.description)")
                }
            } else {
                note = "NaN or Inf values: sparsity only"
            }
        } else {
            changed = storedMask?.population ?? codesA.differingCount(codesB, zeroSignBit: zeroSign, threads: threads)
            note = params == 0 ? "empty tensor" : "\(shape.count)-D tensor: sparsity only"
        }
        return ComparedTensor(name: TensorName(a.name), shape: shape, baseDType: a.dtype.name, tunedDType: b.dtype.name,
                              params: params, changed: changed, converted: codesA.converted || codesB.converted,
                              comparison: comparison, precision: precision, spectralNote: note)
    }
}

/// "[2, 3]".
func shapeText(_ shape: [Int]) -> String {
    "[" + shape.map(String.init).joined(separator: ", ") + "]"
}

/// A tensor name for narrow terminal tables: without the ubiquitous "model." prefix
/// and ".weight" suffix, so that layer numbers survive abbreviation.
public func displayName(_ name: String) -> String {
    var shown = Substring(name)
    if shown.hasPrefix("model.") { shown = shown.dropFirst(6) }
    if shown.hasSuffix(".weight") { shown = shown.dropLast(7) }
    return String(shown)
}

/// One result slot per index, written by exactly one worker.
final class Slots<T>: @unchecked Sendable {
    private let lock = Lock()
    private var stored: [T?]
    init(count: Int) { stored = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: T) { lock.withLock { stored[index] = value } }
    var values: [T] { lock.withLock { stored.map { $0! } } }
}
