import PrecLabFiles
import PrecLabFormats
import PrecLabSpectral
import PrecLabSupport

/// What `CheckpointConsistency` measures: the storage format the masks are taken in
/// and the tensors looked at.
public struct ConsistencyOptions: Sendable, Codable {
    public var format: FloatFormat
    public var selection: TensorSelection
    /// Count a change between +0 and -0 as an update (bit inequality); by default it is
    /// none, as Def. 2.1 of [P] counts "both zero" as unchanged.
    public var signedZeroChanges: Bool

    public init(format: FloatFormat = .bf16, selection: TensorSelection = .all, signedZeroChanges: Bool = false) {
        self.format = format
        self.selection = selection
        self.signedZeroChanges = signedZeroChanges
    }
}

/// One tensor's cross-run statistics.
public struct ConsistentTensor: Sendable, Codable {
    public let name: TensorName
    public let shape: [Int]
    public let params: Int
    public let result: TensorConsistency

    /// Mean over runs of the fraction of elements updated.
    public var meanDensity: Double { result.densities.reduce(0, +) / Double(result.densities.count) }
}

/// The metrics averaged (parameter-weighted) in the totals and per-type summaries of a
/// consistency report; the raw value is the JSON key.
public enum ConsistencyMetric: String, CaseIterable, Sendable {
    case density, jaccard, baseline
    /// The magnitude-stratified baseline of the Jaccard.
    case jaccardMagnitude = "jaccard_magnitude"
    case unanimous
    case rowCV = "row_cv"
    case columnCV = "column_cv"

    public func value(_ tensor: ConsistentTensor) -> Double? {
        let r = tensor.result
        let is2D = tensor.shape.count == 2
        switch self {
        case .density: return tensor.meanDensity
        case .jaccard: return r.meanJaccard
        case .baseline: return r.meanBaseline
        case .jaccardMagnitude: return r.meanJaccardMagnitude
        case .unanimous: return r.consensus.unanimousFraction
        case .rowCV: return is2D ? r.rowRatios.coefficientOfVariation : nil
        case .columnCV: return is2D ? r.columnRatios.coefficientOfVariation : nil
        }
    }
}

/// Do independent runs from one base update the same coordinates? Pairwise Jaccard of
/// the update masks against the independent Bernoulli baseline and the magnitude-
/// stratified baseline (what precision alone makes runs share), consensus over runs
/// and the row/column structure of updates (`preclab consistency`).
public struct CheckpointConsistency: Sendable {
    public let basePath: String
    public let runPaths: [String]
    public let options: ConsistencyOptions
    /// Tensors present in BASE and every run, in report order.
    public let tensors: [ConsistentTensor]
    /// Tensors left out, with the reason.
    public let skipped: [(name: String, reason: String)]

    /// Measures the runs against the base.
    /// - Throws: `PrecLabError.invalidArgument` with fewer than two runs; data errors for
    ///   unreadable tensors and when no tensor is present in every run.
    /// - Parameter labels: how reports and messages name the checkpoints (default: their
    ///   paths; a directory opens as its index file).
    public init(base: Checkpoint, runs: [Checkpoint], options: ConsistencyOptions = .init(),
                progress: (any ProgressReporting)? = nil, labels: (base: String, runs: [String])? = nil) throws {
        guard runs.count >= 2 else {
            throw PrecLabError.invalidArgument("needs at least two runs to compare, got \(runs.count)")
        }
        basePath = labels?.base ?? base.path
        runPaths = labels?.runs ?? runs.map(\.path)
        self.options = options
        let plan = CheckpointConsistency.plan(base: base, runs: runs, runLabels: runPaths, selection: options.selection)
        skipped = plan.skipped
        if plan.selected.isEmpty && options.selection.shardNames == nil {
            var message = "nothing to compare: no tensor of \(basePath)"
            message += options.selection.pattern.map { " matching '\($0)'" } ?? ""
            message += " is present in every run"
            if !plan.skipped.isEmpty {
                message += ": " + plan.skipped.prefix(10).map { "\($0.name): \($0.reason)" }.joined(separator: "; ")
            }
            throw PrecLabError.badData(message)
        }
        // One tensor at a time: its base and run codes (4 B each at most), a bit mask per
        // run and the per-weight counts and strata (16 B); refused up front when the
        // largest cannot fit.
        if let largest = plan.selected.map(\.0).max(by: { $0.info.elementCount < $1.info.elementCount }) {
            let perWeight = 24 + (runs.count + 7) / 8
            try ResourceBudget.requireMemory(
                ResourceBudget.product(largest.info.elementCount, perWeight) ?? Int.max,
                for: "the consistency of tensor '\(largest.name)' over \(runs.count) runs (\(largest.info.elementCount) weights, about \(perWeight) bytes each)")
        }
        let threads = ParallelChunks.threadCount
        let zeroSign = TensorCodes.zeroSignBit(format: options.format, signedZeroChanges: options.signedZeroChanges)
        progress?.begin("consistency", work: plan.selected.map { Double($0.0.info.elementCount * runs.count) })
        var rows: [ConsistentTensor] = []
        for (tensor, others) in plan.selected {
            let baseCodes = try TensorCodes.load(base, tensor, as: options.format, threads: threads)
            var masks: [BitMask] = []
            for (index, other) in others.enumerated() {
                let codes = try TensorCodes.load(runs[index], other, as: options.format, threads: threads)
                masks.append(baseCodes.differingMask(codes, zeroSignBit: zeroSign, threads: threads))
            }
            let strata = baseCodes.strata(format: options.format, threads: threads)
            let shape = tensor.shape
            let (r, c) = shape.count == 2 ? (shape[0], shape[1]) : (1, tensor.info.elementCount)
            rows.append(ConsistentTensor(name: TensorName(tensor.name), shape: shape, params: tensor.info.elementCount,
                                         result: TensorConsistency(masks: masks, rows: r, columns: c, strata: strata)))
            progress?.finished(tensor.name, work: Double(tensor.info.elementCount * runs.count))
        }
        progress?.end()
        tensors = rows.sorted { $0.name < $1.name }
    }

    /// A result put together from its parts (`preclab merge`).
    init(basePath: String, runPaths: [String], options: ConsistencyOptions, tensors: [ConsistentTensor],
         skipped: [(name: String, reason: String)]) {
        self.basePath = basePath
        self.runPaths = runPaths
        self.options = options
        self.tensors = tensors
        self.skipped = skipped
    }

    /// Opens the base and the runs (files, sharded index files or directories) and measures them.
    public init(basePath: String, runPaths: [String], options: ConsistencyOptions = .init(),
                progress: (any ProgressReporting)? = nil) throws {
        try self.init(base: try Checkpoint.open(basePath), runs: try runPaths.map { try Checkpoint.open($0) },
                      options: options, progress: progress, labels: (basePath, runPaths))
    }

    /// Tensors of BASE present with the same shape and a float dtype in every run.
    static func plan(base: Checkpoint, runs: [Checkpoint], runLabels: [String], selection: TensorSelection)
        -> (selected: [(CheckpointTensor, [CheckpointTensor])], skipped: [(name: String, reason: String)])
    {
        var selected: [(CheckpointTensor, [CheckpointTensor])] = []
        var skipped: [(name: String, reason: String)] = []
        for tensor in base.tensors where selection.includes(tensor.name) {
            if let reason = TensorCodes.unsupportedReason(tensor.dtype) {
                skipped.append((tensor.name, reason))
                continue
            }
            var others: [CheckpointTensor] = []
            var problem: String? = nil
            for (index, run) in runs.enumerated() {
                guard let other = run.tensor(named: tensor.name) else {
                    problem = "missing in run \(index + 1) (\(runLabels[index]))"
                    break
                }
                if other.shape != tensor.shape {
                    problem = "shape \(shapeText(other.shape)) in run \(index + 1) vs \(shapeText(tensor.shape)) in BASE"
                    break
                }
                if let reason = TensorCodes.unsupportedReason(other.dtype) {
                    problem = "run \(index + 1): \(reason)"
                    break
                }
                others.append(other)
            }
            if let problem { skipped.append((tensor.name, problem)) } else { selected.append((tensor, others)) }
        }
        return (selected, skipped)
    }

    /// Parameter-weighted summary of `selected` tensors.
    public func summary(_ selected: [ConsistentTensor]) -> WeightedSummary<ConsistencyMetric> {
        var summary = WeightedSummary<ConsistencyMetric>()
        for row in selected {
            let changed = Int((row.meanDensity * Double(row.params)).rounded())
            summary.add(parameters: row.params, changed: changed,
                        metrics: ConsistencyMetric.allCases.map { ($0, $0.value(row)) })
        }
        return summary
    }

    /// Summary over every tensor.
    public var total: WeightedSummary<ConsistencyMetric> { summary(tensors) }

    /// Summary of the tensors of one matrix type.
    public func summary(of type: MatrixType) -> WeightedSummary<ConsistencyMetric> {
        summary(tensors.filter { $0.name.type == type })
    }

    /// The matrix types present, in report order.
    public var types: [MatrixType] { MatrixType.allCases.filter { type in tensors.contains { $0.name.type == type } } }
}
