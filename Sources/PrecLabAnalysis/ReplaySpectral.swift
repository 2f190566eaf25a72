import PrecLabReplay
import PrecLabReports
import PrecLabSpectral
import PrecLabSupport

/// The spectral picture after a replay (`replay --spectral`): the spectral metrics of W0 -> W_T for every 2-D tensor under
/// every policy (the fp32 truth included), so a user sees whether storage precision
/// distorts the spectral picture. W0 and W_T are what each policy stores: fp32 values
/// for `fp32`, decoded codes for the stored policies; the update mask is "stored bits
/// changed".
public struct ReplaySpectral: Sendable {
    public struct Entry: Sendable, Codable {
        public let tensor: String
        public let shape: [Int]
        public let policy: ReplayPolicy
        public let comparison: MatrixComparison
        /// Whether this is the null model's replay rather than the stream's.
        public var null = false
    }

    public let options: SpectralOptions
    public private(set) var entries: [Entry] = []
    /// Tensors left out, with the reason (never a silent empty result).
    public private(set) var skipped: [(tensor: String, reason: String)] = []

    /// A result put together from its parts (`preclab merge`).
    init(options: SpectralOptions, entries: [Entry] = [], skipped: [(tensor: String, reason: String)] = []) {
        self.options = options
        self.entries = entries
        self.skipped = skipped
    }

    /// The metrics of every 2-D tensor of `engine` (after the replay that produced
    /// `result`) under each of the replay's policies.
    public static func compute(engine: ReplayEngine, result: ReplayResult, options: SpectralOptions,
                               progress: (any ProgressReporting)? = nil) throws -> ReplaySpectral {
        var spectral = ReplaySpectral(options: options)
        let policies = result.configuration.policies
        let matrices = engine.tensors.enumerated().filter { $0.element.shape.count == 2 }
        for tensor in engine.tensors where tensor.shape.count != 2 {
            spectral.skipped.append((tensor.name, "\(tensor.shape.count)-D, spectral metrics need a matrix"))
        }
        progress?.begin("spectral", work: [])
        var done = 0
        let format = result.configuration.format
        let signedZeros = result.configuration.signedZeroChanges
        let runs: [(engine: ReplayEngine, null: Bool)] = [(engine, false)] + (engine.nullEngine.map { [($0, true)] } ?? [])
        for (index, tensor) in matrices {
            // Strata: binades of the stored base (the same for every policy, fp32 included).
            let strata = MagnitudeStrata(storedValues: engine.weightsBeforeAndAfter(.master, tensor: index).before,
                                         minimumNormal: format.minNormal)
            for (run, isNull) in runs {
                for policy in policies {
                    let weights = run.weightsBeforeAndAfter(policy, tensor: index)
                    let changed = ReplaySpectral.updateMask(before: weights.before, after: weights.after,
                                                            changed: weights.changed, signedZeroChanges: signedZeros)
                    guard let comparison = try measure(rows: tensor.shape[0], columns: tensor.shape[1],
                                                       before: weights.before, after: weights.after,
                                                       changed: changed, strata: strata, options: options) else {
                        spectral.skipped.append((tensor.name, "\(isNull ? "null " : "")\(policy.rawValue): non-finite weights"))
                        continue
                    }
                    spectral.entries.append(Entry(tensor: tensor.name, shape: tensor.shape, policy: policy,
                                                  comparison: comparison, null: isNull))
                    done += 1
                    progress?.update(done: done, total: matrices.count * policies.count * runs.count)
                }
            }
        }
        progress?.end()
        return spectral
    }

    /// The metrics of one matrix W0 -> W_T (row-major values) with the update mask
    /// `changed` and the binade strata of the stored W0 (for the magnitude baselines;
    /// nil: W0 stratified as fp32 values);
    /// nil when a weight is NaN or Inf. The one place a replayed matrix is measured:
    /// `compute` and the sweep runner both call it.
    public static func measure(rows: Int, columns: Int, before: [Double], after: [Double], changed: BitMask,
                               strata: MagnitudeStrata? = nil, options: SpectralOptions) throws -> MatrixComparison? {
        guard before.allSatisfy(\.isFinite), after.allSatisfy(\.isFinite) else { return nil }
        return try MatrixComparison(base: Matrix(rows: rows, columns: columns, rowMajor: before),
                                    tuned: Matrix(rows: rows, columns: columns, rowMajor: after),
                                    updateMask: changed, strata: strata, options: options)
    }

    /// The update mask of stored values: `changed` (stored bits differ) except that a
    /// change between +0 and -0 is none unless `signedZeroChanges` (Def. 2.1 of [P]).
    public static func updateMask(before: [Double], after: [Double], changed: [Bool],
                                  signedZeroChanges: Bool) -> BitMask {
        BitMask(changed.indices.map { i in
            changed[i] && (signedZeroChanges || !(before[i] == 0 && after[i] == 0))
        })
    }

    /// The `spectral` object added to a tensor's JSON, keyed by policy.
    public func json(forTensor name: String) -> JSONValue? {
        json(forTensor: name, null: false)
    }

    /// The `spectral` (or, for the null model's replay, `spectral_null`) object of a tensor.
    public func json(forTensor name: String, null: Bool) -> JSONValue? {
        let mine = entries.filter { $0.tensor == name && $0.null == null }
        guard !mine.isEmpty else { return nil }
        var object = JSONObject()
        for entry in mine { object[entry.policy.rawValue] = ReplaySpectral.json(entry.comparison) }
        return .object(object)
    }

    /// The metrics with the field names `preclab compare` uses, plus the update count.
    public static func json(_ comparison: MatrixComparison) -> JSONValue {
        var object = JSONObject([("changed", .int(comparison.changed))])
        for (key, value) in comparison.jsonFields().pairs { object[key] = value }
        return .object(object)
    }

    /// Adds the `spectral` objects to a replay's JSON document.
    public func merge(into document: JSONValue) -> JSONValue {
        guard var root = document.objectValue, let tensors = root["tensors"]?.arrayValue else { return document }
        root["tensors"] = .array(tensors.map { tensor in
            guard var object = tensor.objectValue, let name = object["name"]?.stringValue,
                  let spectral = json(forTensor: name) else { return tensor }
            object["spectral"] = spectral
            if let null = json(forTensor: name, null: true) { object["spectral_null"] = null }
            return .object(object)
        })
        root["spectral_options"] = .object(JSONObject([("k", .int(options.k)), ("rank", .int(options.rank)),
                                                       ("alpha", .finite(options.alpha))]))
        root["spectral_skipped"] = .array(skipped.map {
            .object(JSONObject([("name", .string($0.tensor)), ("reason", .string($0.reason))]))
        })
        return .object(root)
    }

    /// A row per matrix and policy.
    public func table() -> TextTable {
        var table = TextTable(
            title: "spectral picture of W0 -> W_T per policy (k \(options.k), rank \(options.rank), "
                + "alpha \(NumberFormat.shortest(options.alpha)))",
            columns: [.text("tensor"), .text("policy"), .number("NSS", style: .general(significant: 3)),
                      .number("max∠U", style: .degrees(decimals: 3)), .number("max∠V", style: .degrees(decimals: 3)),
                      .number("princ ovl", style: .fixed(decimals: 3)), .number("mag", style: .fixed(decimals: 3)),
                      .number("low ovl", style: .fixed(decimals: 3)), .number("mag", style: .fixed(decimals: 3)),
                      .number("E top-k", style: .general(significant: 3))])
        table.columns[1].abbreviates = false
        for entry in entries {
            let comparison = entry.comparison
            func cell(_ value: Double?) -> TableCell { value.map { .number($0) } ?? .empty }
            table.addRow([.text(entry.tensor), .text((entry.null ? "null " : "") + entry.policy.rawValue), cell(comparison.nss),
                          cell(comparison.angleUMaxDegrees), cell(comparison.angleVMaxDegrees),
                          cell(comparison.principalOverlap), cell(comparison.principalOverlapMagnitude),
                          cell(comparison.lowOverlap), cell(comparison.lowOverlapMagnitude), cell(comparison.energyTopK)])
        }
        table.addFootnote("overlaps: share of changed entries inside the principal (top-alpha of |rank-r W0|) "
                          + "and low-magnitude (bottom-alpha of |W0|) masks; random: alpha; mag: the overlap expected "
                          + "if changes depended only on the binade of the stored W0 (the JSON report has control and every baseline)")
        for (tensor, reason) in skipped { table.addFootnote("skipped \(tensor): \(reason)") }
        return table
    }
}

extension ReplaySpectral {
    /// Replays the update stream at `path` and, when `spectral` is given, measures the
    /// spectral picture of W0 -> W_T under every policy (`preclab replay --spectral`).
    public static func replay(path: String, configuration: ReplayConfiguration,
                              options: StreamReplayOptions = StreamReplayOptions(),
                              spectral: SpectralOptions?,
                              progress: (any ProgressReporting)? = nil) throws -> (result: ReplayResult, spectral: ReplaySpectral?) {
        progress?.begin("replay", work: [])
        let (result, engine) = try StreamReplay.runKeepingState(path: path, configuration: configuration,
                                                                options: options) { done, total in
            progress?.update(done: done, total: total)
        }
        progress?.end()
        guard let spectral else { return (result, nil) }
        return (result, try compute(engine: engine, result: result, options: spectral, progress: progress))
    }
}
