import PrecLabFiles
import PrecLabFormats
import PrecLabReports
import PrecLabSpectral
import PrecLabSupport

/// `preclab compare BASE TUNED`: per-tensor update sparsity in a storage format and the
/// spectral metrics of [P] (NSS, principal angles, principal/low-magnitude mask
/// overlaps, update energy, perturbation bounds), with totals and per-type summaries.
enum CompareCommand: Command {
    static let name = "compare"
    static let summary = "bf16 update sparsity and spectral metrics between two checkpoints"
    static let help = """
    usage: preclab compare BASE TUNED [--dtype bf16] [--k 64] [--rank 64] [--alpha 0.5]
                           [--tensors REGEX] [--svd exact|randomized|auto]
                           [--signed-zero-changes]
                           [--json FILE] [--csv FILE] [--plots DIR] [--force] [--quiet]

    BASE and TUNED are safetensors files, sharded checkpoints (index JSON) or
    directories. Both are brought to --dtype (tensors stored in another float format are
    rounded to nearest-even; already in --dtype: compared as stored). For every tensor:
    sparsity = fraction of elements whose --dtype codes are bit-for-bit equal (a change
    between +0 and -0 is no change unless --signed-zero-changes). For 2-D
    tensors, in float64 on LAPACK (see docs/metrics.md):
      NSS          ||sigma(W1) - sigma(W0)|| / ||sigma(W0)||, full spectrum
      angles       principal angles between the top-k left (U) and right (V) singular
                   subspaces of W0 and W1, max and mean in degrees
      overlaps     |M & M_princ|/|M| (M_princ: top-alpha of |rank-r reconstruction of
                   W0|), |M & M_low|/|M| (bottom-alpha of |W0|), and their control
                   M_princ minus M_low; each beside its random baseline (alpha; the
                   control's density) and its magnitude baseline (the overlap expected
                   if updates depended only on the binade of the stored W0)
      energy       ||U_k U_k^T dW V_k V_k^T||_F^2 / ||dW||_F^2
      bounds       Weyl, Mirsky, Wedin (flagged vacuous when the gap is too small) and
                   Ky Fan beside the measured values
    When both checkpoints are wider than --dtype (e.g. fp32 tuned weights), also
    fp32_changed (source values differ), hidden_by_precision = fp32_changed - changed
    and the histogram of |W1 - W0| / half-ULP(stored W0) (octaves; CSV and SVG in
    --plots). Totals are weighted by parameter count, with a summary per matrix type (q, k, v, o,
    gate, up, down, others). Tensors that cannot be compared (missing on one side,
    shape mismatch, not floating point) and tensors with sparsity only (not 2-D,
    NaN/Inf) are listed with the reason.

    options:
      --dtype FORMAT   storage format compared (default bf16; any preclab format name)
      --k K            dimension of the compared top singular subspaces (default 64)
      --rank R         rank of the reconstruction behind the principal mask (default 64)
      --alpha A        fraction of entries in each mask, 0..1 (default 0.5)
      --tensors REGEX  only tensors whose names match
      --svd MODE       exact (default), randomized (reports an error bound per tensor
                       and refuses angles it cannot bound below 0.01 degrees) or auto
                       (randomized when 4*(max(k,rank)+10) <= min(m,n))
      --signed-zero-changes  count +0 <-> -0 as a change (bit inequality)
      --json FILE      write every metric as JSON
      --csv FILE       write the per-tensor table as CSV
      --plots DIR      write SVG plots (spectra, angles, NSS and max angle by layer,
                       overlaps by type beside their magnitude baselines) and, for
                       wide inputs, precision_hidden.csv and precision_hidden.svg
      --force          replace existing output files
      --quiet          no progress on stderr

    Exit status: 0 success, 1 bad data (unreadable checkpoint, nothing comparable),
    2 bad usage.
    """
    static let options: [OptionSpec] = [
        .value("--dtype"), .value("--k"), .value("--rank"), .value("--alpha"), .value("--tensors"),
        .value("--svd"), .value("--json"), .value("--csv"), .value("--plots"), .flag("--force"),
        .flag("--quiet"), .flag("--signed-zero-changes"),
    ]

    struct Settings {
        var format: FloatFormat
        var spectral: SpectralOptions
        var pattern: String?
        var svdMode: String
        var signedZeroChanges = false
    }

    /// One compared tensor.
    struct Row: Sendable {
        let name: TensorName
        let shape: [Int]
        let baseDType: String
        let tunedDType: String
        let params: Int
        let changed: Int
        let converted: Bool
        let comparison: MatrixComparison?
        /// Changes hidden by the format (nil unless both inputs are wider than --dtype).
        let precision: PrecisionHiddenChanges?
        /// Why the spectral metrics are missing, when they are.
        let spectralNote: String?
        var sparsity: Double { params == 0 ? 1 : Double(params - changed) / Double(params) }
    }

    struct Skip {
        let name: String
        /// "tensor" (not compared at all) or "spectral" (sparsity only).
        let scope: String
        let reason: String
    }

    static func run(_ arguments: ParsedArguments) throws {
        let paths = try arguments.requirePositionals(2, names: "BASE and TUNED checkpoints")
        let settings = try parseSettings(arguments)
        let force = arguments.flag("--force")
        let jsonPath = arguments.value("--json"), csvPath = arguments.value("--csv")
        let plotsPath = arguments.value("--plots")

        let base = try Checkpoint.open(paths[0])
        let tuned = try Checkpoint.open(paths[1])
        let inputs = paths + base.shards.map(\.path) + tuned.shards.map(\.path) + [base.indexPath, tuned.indexPath].compactMap { $0 }
        // Refuse outputs before the long computation, not after it.
        if let jsonPath, jsonPath == csvPath {
            throw PrecLabError.usage("preclab \(name): --json and --csv name the same file '\(jsonPath)'")
        }
        for path in [jsonPath, csvPath].compactMap({ $0 }) {
            try AtomicFileWriter.checkDestination(path, force: force, inputs: inputs)
        }
        if let plotsPath {
            for file in Report.plotNames + Report.precisionFileNames {
                try AtomicFileWriter.checkDestination(plotsPath + "/" + file, force: force, inputs: inputs)
            }
        }
        let include = try tensorFilter(settings.pattern, command: name)

        let planned = plan(base: base, tuned: tuned, include: include)
        let pairs = planned.pairs
        var skipped = planned.skipped
        if pairs.isEmpty {
            var message = "nothing to compare between \(paths[0]) and \(paths[1])"
            if let pattern = settings.pattern {
                message += " (--tensors '\(pattern)' matched \(skipped.count) tensor(s) that cannot be compared)"
            }
            if !skipped.isEmpty {
                message += ": " + skipped.prefix(10).map { "\($0.name): \($0.reason)" }.joined(separator: "; ")
                if skipped.count > 10 { message += "; and \(skipped.count - 10) more" }
            }
            throw PrecLabError.badData(message)
        }
        let rows = try compare(pairs, base: base, tuned: tuned, settings: settings, quiet: arguments.flag("--quiet"))
        for row in rows where row.spectralNote != nil {
            skipped.append(Skip(name: row.name.name, scope: "spectral", reason: row.spectralNote!))
        }

        let report = Report(rows: rows, skipped: skipped, settings: settings, basePath: paths[0], tunedPath: paths[1])
        if let jsonPath { try report.json().write(to: jsonPath, force: force, inputs: inputs) }
        if let csvPath { try report.csv().write(to: csvPath, force: force, inputs: inputs) }
        if let plotsPath {
            let directory = try ReportDirectory(path: plotsPath, force: force, inputs: inputs)
            let plots = report.plots()
            if plots.isEmpty { Console.error("preclab \(name): no 2-D tensor was compared, so no plot was written to \(plotsPath)") }
            try directory.write(plots)
        }
        Console.out(report.text(width: TextTable.terminalColumns()))
    }

    static func parseSettings(_ arguments: ParsedArguments) throws -> Settings {
        let format = try FloatFormat.named(arguments.value("--dtype") ?? "bf16")
        let k = try arguments.integer("--k", default: 64)
        let rank = try arguments.integer("--rank", default: 64)
        let alpha = try arguments.double("--alpha", default: 0.5)
        guard k >= 1 else { throw PrecLabError.usage("preclab \(name): --k must be at least 1") }
        guard rank >= 1 else { throw PrecLabError.usage("preclab \(name): --rank must be at least 1") }
        guard alpha >= 0, alpha <= 1 else { throw PrecLabError.usage("preclab \(name): --alpha must lie in [0, 1]") }
        let svdMode = arguments.value("--svd") ?? "exact"
        let method: TopSVDMethod
        switch svdMode {
        case "auto": method = .automatic
        case "exact": method = .exact
        case "randomized": method = .randomized
        default: throw PrecLabError.usage("preclab \(name): --svd must be exact, randomized or auto")
        }
        return Settings(format: format, spectral: SpectralOptions(k: k, rank: rank, alpha: alpha, method: method),
                        pattern: arguments.value("--tensors"), svdMode: svdMode,
                        signedZeroChanges: arguments.flag("--signed-zero-changes"))
    }

    /// Pairs tensors by name; everything that cannot be compared becomes a skip.
    static func plan(base: Checkpoint, tuned: Checkpoint, include: (String) -> Bool)
        -> (pairs: [(CheckpointTensor, CheckpointTensor)], skipped: [Skip])
    {
        var pairs: [(CheckpointTensor, CheckpointTensor)] = []
        var skipped: [Skip] = []
        for tensor in base.tensors where include(tensor.name) {
            guard let other = tuned.tensor(named: tensor.name) else {
                skipped.append(Skip(name: tensor.name, scope: "tensor", reason: "missing in TUNED"))
                continue
            }
            if tensor.shape != other.shape {
                skipped.append(Skip(name: tensor.name, scope: "tensor",
                                    reason: "shape \(shapeText(tensor.shape)) in BASE vs \(shapeText(other.shape)) in TUNED"))
                continue
            }
            if let reason = TensorCodes.unsupportedReason(tensor.dtype) ?? TensorCodes.unsupportedReason(other.dtype) {
                skipped.append(Skip(name: tensor.name, scope: "tensor", reason: reason))
                continue
            }
            pairs.append((tensor, other))
        }
        for tensor in tuned.tensors where include(tensor.name) && base.tensor(named: tensor.name) == nil {
            skipped.append(Skip(name: tensor.name, scope: "tensor", reason: "missing in BASE"))
        }
        return (pairs, skipped)
    }

    /// Runs every pair through the spectral scheduler (small matrices in parallel, large
    /// ones one at a time with a fixed BLAS thread count).
    static func compare(_ pairs: [(CheckpointTensor, CheckpointTensor)], base: Checkpoint, tuned: Checkpoint,
                        settings: Settings, quiet: Bool) throws -> [Row] {
        let shapes = pairs.map { pair -> (rows: Int, columns: Int) in
            let shape = pair.0.shape
            return shape.count == 2 ? (shape[0], shape[1]) : (1, pair.0.info.elementCount)
        }
        let work = pairs.indices.map { index -> Double in
            let (m, n) = shapes[index]
            let elements = Double(m) * Double(n)
            return pairs[index].0.shape.count == 2 ? elements * Double(min(m, n)) / 64 + elements : elements
        }
        let meter = ProgressMeter(label: "preclab compare", work: work, enabled: !quiet)
        let slots = Slots<Result<Row, PrecLabError>>(count: pairs.count)
        let shared = UnsafeSendable((pairs, base, tuned, settings))
        SpectralScheduler.run(shapes: shapes) { index in
            let (pairs, base, tuned, settings) = shared.value
            let threads = BLASThreads.isSmall(rows: shapes[index].rows, columns: shapes[index].columns)
                ? 1 : ParallelChunks.threadCount
            let result: Result<Row, PrecLabError>
            do {
                result = .success(try compareTensor(pairs[index].0, pairs[index].1, base: base, tuned: tuned,
                                                    settings: settings, threads: threads))
            } catch let error as PrecLabError {
                result = .failure(error)
            } catch {
                result = .failure(.badData("\(pairs[index].0.name): \(error)"))
            }
            slots.set(index, result)
            meter.finished(pairs[index].0.name, work: work[index])
        }
        meter.finish()
        var rows: [Row] = []
        for result in slots.values {
            switch result {
            case .success(let row): rows.append(row)
            case .failure(let error): throw error
            }
        }
        return rows.sorted { $0.name < $1.name }
    }

    static func compareTensor(_ a: CheckpointTensor, _ b: CheckpointTensor, base: Checkpoint, tuned: Checkpoint,
                              settings: Settings, threads: Int) throws -> Row {
        let format = settings.format
        let codesA = try TensorCodes.load(base, a, as: format, threads: threads)
        let codesB = try TensorCodes.load(tuned, b, as: format, threads: threads)
        let shape = a.shape
        let params = a.info.elementCount
        var comparison: MatrixComparison? = nil
        var note: String? = nil
        let changed: Int
        let zeroSign = TensorCodes.zeroSignBit(format: format, signedZeroChanges: settings.signedZeroChanges)
        var precision: PrecisionHiddenChanges? = nil
        let wide = SourceValues.isWider(a.dtype, than: format) && SourceValues.isWider(b.dtype, than: format)
        let storedMask = wide || (shape.count == 2 && params > 0)
            ? codesA.differingMask(codesB, zeroSignBit: zeroSign, threads: threads) : nil
        if wide, let mask = storedMask {
            let sourceA = SourceValues(base, a), sourceB = SourceValues(tuned, b)
            precision = PrecisionHiddenChanges(count: params, base: { sourceA[$0] }, tuned: { sourceB[$0] },
                                               halfULP: { codesA.halfULP($0, format: format) }, storedMask: mask,
                                               signedZeroChanges: settings.signedZeroChanges)
        }
        if shape.count == 2 && params > 0, let mask = storedMask {
            changed = mask.population
            let w0 = codesA.matrix(rows: shape[0], columns: shape[1], format: format, threads: threads)
            let w1 = codesB.matrix(rows: shape[0], columns: shape[1], format: format, threads: threads)
            if w0.isFinite && w1.isFinite {
                do {
                    comparison = try MatrixComparison(base: w0, tuned: w1, updateMask: mask,
                                                      strata: MagnitudeStrata(storedMatrix: w0, minimumNormal: format.minNormal),
                                                      options: settings.spectral)
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
        return Row(name: TensorName(a.name), shape: shape, baseDType: a.dtype.name, tunedDType: b.dtype.name,
                   params: params, changed: changed, converted: codesA.converted || codesB.converted,
                   comparison: comparison, precision: precision, spectralNote: note)
    }

    /// A tensor name for narrow terminal tables: without the ubiquitous "model." prefix
    /// and ".weight" suffix, so that layer numbers survive abbreviation.
    static func displayName(_ name: String) -> String {
        var shown = Substring(name)
        if shown.hasPrefix("model.") { shown = shown.dropFirst(6) }
        if shown.hasSuffix(".weight") { shown = shown.dropLast(7) }
        return String(shown)
    }

    static func shapeText(_ shape: [Int]) -> String {
        "[" + shape.map(String.init).joined(separator: ", ") + "]"
    }
}

/// One result slot per index, written by exactly one worker.
final class Slots<T>: @unchecked Sendable {
    private let lock = Lock()
    private var stored: [T?]
    init(count: Int) { stored = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: T) { lock.withLock { stored[index] = value } }
    var values: [T] { lock.withLock { stored.map { $0! } } }
}

extension CompareCommand {
    /// Everything `compare` prints and writes, built from the rows.
    struct Report {
        let rows: [Row]
        let skipped: [Skip]
        let settings: Settings
        let basePath: String
        let tunedPath: String

        /// Parameter-weighted metrics of the totals and type summaries.
        static let summaryMetrics: [(key: String, value: @Sendable (MatrixComparison) -> Double?)] = baseMetrics
            + MatrixComparison.overlapMetrics
        private static let baseMetrics: [(key: String, value: @Sendable (MatrixComparison) -> Double?)] = [
            ("nss", { $0.nss }),
            ("angle_u_max_deg", { $0.angleUMaxDegrees }),
            ("angle_v_max_deg", { $0.angleVMaxDegrees }),
            ("angle_u_mean_deg", { $0.angleUMeanDegrees }),
            ("angle_v_mean_deg", { $0.angleVMeanDegrees }),
            ("energy_top_k", { $0.energyTopK }),
        ]

        func summary(_ selected: [Row]) -> WeightedSummary {
            var summary = WeightedSummary()
            for row in selected {
                summary.add(parameters: row.params, changed: row.changed,
                            metrics: Report.summaryMetrics.map { ($0.key, row.comparison.flatMap($0.value)) })
            }
            return summary
        }

        var types: [MatrixType] {
            MatrixType.allCases.filter { type in rows.contains { $0.name.type == type } }
        }

        var violations: [(tensor: String, bound: String)] {
            rows.flatMap { row in (row.comparison?.boundViolations ?? []).map { (row.name.name, $0) } }
        }

        // MARK: JSON

        func json() -> JSONValue {
            var root = JSONObject()
            root["base"] = .string(basePath)
            root["tuned"] = .string(tunedPath)
            root["options"] = .object(optionsJSON())
            root["tensors"] = .array(rows.map { .object(rowJSON($0)) })
            var total = summaryJSON(summary(rows))
            if let precision = precisionTotal(rows) {
                for (key, value) in precision.json().pairs { total[key] = value }
            } else {
                total["fp32_changed"] = .null
                total["hidden_by_precision"] = .null
            }
            root["total"] = .object(total)
            root["precision_ratio_bins"] = .array(PrecisionHiddenChanges.labels.map { .string($0) })
            var byType = JSONObject()
            for type in types { byType[type.rawValue] = .object(summaryJSON(summary(rows.filter { $0.name.type == type }))) }
            root["by_type"] = .object(byType)
            root["skipped"] = .array(skipped.map {
                .object(JSONObject([("name", .string($0.name)), ("scope", .string($0.scope)), ("reason", .string($0.reason))]))
            })
            root["bound_violations"] = .array(violations.map {
                .object(JSONObject([("name", .string($0.tensor)), ("bound", .string($0.bound))]))
            })
            return .object(root)
        }

        func optionsJSON() -> JSONObject {
            let s = settings.spectral
            return JSONObject([
                ("dtype", .string(settings.format.name)),
                ("k", .int(s.k)), ("rank", .int(s.rank)), ("alpha", .number(s.alpha)),
                ("tensors", settings.pattern.map { .string($0) } ?? .null),
                ("svd", .string(settings.svdMode)),
                ("oversampling", .int(s.randomized.oversampling)),
                ("power_iterations", .int(s.randomized.powerIterations)),
                ("seed", .integer(Int64(bitPattern: s.randomized.seed))),
                ("precision", "float64"),
                ("signed_zero_changes", .bool(settings.signedZeroChanges)),
                ("blas_threads_large_matrix", .int(Int(BLASThreads.largeMatrixThreads))),
            ])
        }

        static func optional(_ value: Double?) -> JSONValue { value.map { .finite($0) } ?? .null }

        func rowJSON(_ row: Row) -> JSONObject {
            var o = JSONObject()
            o["name"] = .string(row.name.name)
            o["layer"] = row.name.layer.map { .int($0) } ?? .null
            o["type"] = .string(row.name.type.rawValue)
            o["shape"] = .array(row.shape.map { .int($0) })
            o["dtype_base"] = .string(row.baseDType)
            o["dtype_tuned"] = .string(row.tunedDType)
            o["converted"] = .bool(row.converted)
            o["params"] = .int(row.params)
            o["changed"] = .int(row.changed)
            o["sparsity"] = .finite(row.sparsity)
            o["spectral"] = .bool(row.comparison != nil)
            if let c = row.comparison {
                for (key, value) in c.jsonFields().pairs { o[key] = value }
            } else {
                for key in ["nss", "angle_u_max_deg", "angle_v_max_deg", "angle_u_mean_deg", "angle_v_mean_deg"]
                    + MatrixComparison.overlapMetrics.map(\.key) { o[key] = .null }
                o["alpha"] = .number(settings.spectral.alpha)
                o["k"] = .int(settings.spectral.k)
                o["rank"] = .int(settings.spectral.rank)
            }
            o["note"] = row.spectralNote.map { .string($0) } ?? .null
            if let precision = row.precision {
                for (key, value) in precision.json().pairs { o[key] = value }
            } else {
                for key in ["fp32_changed", "hidden_by_precision", "precision_ratio_histogram", "precision_ratio_visible"] {
                    o[key] = .null
                }
            }
            return o
        }

        func summaryJSON(_ s: WeightedSummary) -> JSONObject {
            var o = JSONObject()
            o["tensors"] = .int(s.tensors)
            o["params"] = .int(s.parameters)
            o["changed"] = .int(s.changed)
            o["sparsity"] = Report.optional(s.sparsity)
            for (key, _) in Report.summaryMetrics { o[key] = Report.optional(s.mean(key)) }
            o["alpha_baseline"] = .number(settings.spectral.alpha)
            return o
        }

        // MARK: CSV

        func csv() -> CSVTable {
            var table = CSVTable(header: [
                "name", "layer", "type", "shape", "params", "changed", "sparsity", "nss",
                "angle_u_max_deg", "angle_v_max_deg", "angle_u_mean_deg", "angle_v_mean_deg",
                "principal_overlap", "principal_overlap_magnitude", "low_overlap", "low_overlap_magnitude",
                "control_overlap", "control_overlap_random", "control_overlap_magnitude", "energy_top_k", "delta_frobenius",
                "delta_spectral", "stable_rank", "wedin_vacuous", "svd", "angle_error_bound_deg", "alpha", "k", "rank",
                "fp32_changed", "hidden_by_precision", "note",
            ])
            for row in rows {
                let c = row.comparison
                func cell(_ value: Double?) -> TableCell { value.map { .number($0) } ?? .empty }
                table.addRow([
                    .text(row.name.name), row.name.layer.map { .integer($0) } ?? .empty, .text(row.name.type.rawValue),
                    .text(row.shape.map(String.init).joined(separator: "x")), .integer(row.params), .integer(row.changed),
                    .number(row.sparsity), cell(c?.nss), cell(c?.angleUMaxDegrees), cell(c?.angleVMaxDegrees),
                    cell(c?.angleUMeanDegrees), cell(c?.angleVMeanDegrees), cell(c?.principalOverlap),
                    cell(c?.principalOverlapMagnitude), cell(c?.lowOverlap), cell(c?.lowOverlapMagnitude),
                    cell(c?.controlOverlap), cell(c?.controlOverlapRandom), cell(c?.controlOverlapMagnitude),
                    cell(c?.energyTopK), cell(c?.deltaFrobenius),
                    cell(c?.deltaSpectral), cell(c?.stableRank),
                    c.map { .text($0.bounds.wedinU.vacuous ? "true" : "false") } ?? .empty,
                    c.map { .text($0.randomized ? "randomized" : "exact") } ?? .empty, cell(c?.angleErrorBoundDegrees),
                    .number(settings.spectral.alpha), .integer(c?.k ?? settings.spectral.k),
                    .integer(c?.rank ?? settings.spectral.rank),
                    row.precision.map { .integer($0.sourceChanged) } ?? .empty,
                    row.precision.map { .integer($0.hiddenByPrecision) } ?? .empty,
                    row.spectralNote.map { .text($0) } ?? .empty,
                ])
            }
            return table
        }

        // MARK: Terminal

        func text(width: Int) -> String {
            func cell(_ value: Double?) -> TableCell { value.map { .number($0) } ?? .empty }
            var perTensor = TextTable(title: "preclab compare: \(basePath) -> \(tunedPath) (\(settings.format.name) codes)", columns: [
                .text("tensor"), .number("params", style: .compactCount),
                .number("unchanged", style: .percent(decimals: 1)), .number("NSS", style: .scientific(digits: 2)),
                .number("maxθ", style: .general(significant: 3)),
                .number("∩princ", style: .fixed(decimals: 3)), .number("mag", style: .fixed(decimals: 3)),
                .number("∩low", style: .fixed(decimals: 3)), .number("mag", style: .fixed(decimals: 3)),
                .number("energy_k", style: .fixed(decimals: 3)),
            ])
            for row in rows {
                let c = row.comparison
                perTensor.addRow([.text(displayName(row.name.name)), .integer(row.params), .number(row.sparsity), cell(c?.nss), cell(c?.angleMaxDegrees),
                                  cell(c?.principalOverlap), cell(c?.principalOverlapMagnitude),
                                  cell(c?.lowOverlap), cell(c?.lowOverlapMagnitude), cell(c?.energyTopK)])
            }
            var byType = TextTable(title: "by matrix type (parameter-weighted; random overlap baseline α = \(settings.spectral.alpha))", columns: [
                .text("type"), .number("tensors", style: .count), .number("params", style: .compactCount),
                .number("unchanged", style: .percent(decimals: 1)), .number("NSS", style: .scientific(digits: 2)),
                .number("maxθU°", style: .general(significant: 3)), .number("maxθV°", style: .general(significant: 3)),
                .number("∩princ", style: .fixed(decimals: 3)), .number("rand", style: .fixed(decimals: 3)),
                .number("mag", style: .fixed(decimals: 3)), .number("∩low", style: .fixed(decimals: 3)),
                .number("rand", style: .fixed(decimals: 3)), .number("mag", style: .fixed(decimals: 3)),
            ])
            func summaryRow(_ label: String, _ s: WeightedSummary) -> [TableCell] {
                [.text(label), .integer(s.tensors), .integer(s.parameters), cell(s.sparsity), cell(s.mean("nss")),
                 cell(s.mean("angle_u_max_deg")), cell(s.mean("angle_v_max_deg")), cell(s.mean("principal_overlap")),
                 cell(s.mean("principal_overlap_random")), cell(s.mean("principal_overlap_magnitude")),
                 cell(s.mean("low_overlap")), cell(s.mean("low_overlap_random")), cell(s.mean("low_overlap_magnitude"))]
            }
            for type in types { byType.addRow(summaryRow(type.rawValue, summary(rows.filter { $0.name.type == type }))) }
            byType.addTotalRow(summaryRow("total", summary(rows)))
            let s = settings.spectral
            byType.addFootnote("tensor names are shown without a leading 'model.' and a trailing '.weight'; maxθ = max(maxθU, maxθV) in degrees; shapes in --csv and --json")
            byType.addFootnote("options: dtype \(settings.format.name), k \(s.k), rank \(s.rank), alpha \(s.alpha), svd \(settings.svdMode)" + (settings.svdMode == "exact" ? "" : " (oversampling \(s.randomized.oversampling), \(s.randomized.powerIterations) power iterations)") + ", float64; angles in degrees")
            var groups: [(String, [String])] = []
            for skip in skipped {
                let key = (skip.scope == "tensor" ? "not compared: " : "") + skip.reason
                if let index = groups.firstIndex(where: { $0.0 == key }) { groups[index].1.append(skip.name) }
                else { groups.append((key, [skip.name])) }
            }
            for (reason, names) in groups {
                let shown = names.prefix(4).joined(separator: ", ") + (names.count > 4 ? ", ... (\(names.count - 4) more; see --json)" : "")
                byType.addFootnote("skipped (\(names.count)) \(reason): \(shown)")
            }
            byType.addFootnote("overlaps: ∩ = share of changed entries in the mask; rand = random baseline (alpha); "
                + "mag = magnitude baseline, the overlap expected if changes depended only on the binade of W0 "
                + "(observed ≈ mag: precision explains it; see docs/metrics.md)")
            if let precision = precisionTotal(rows) {
                byType.addFootnote("fp32 inputs: \(precision.sourceChanged) values changed, \(precision.storedChanged) visible in "
                    + "\(settings.format.name), \(precision.hiddenByPrecision) hidden by precision")
            }
            let refused = rows.filter { $0.comparison?.angleNote != nil }.count
            if refused > 0 {
                byType.addFootnote("randomized SVD: angles of \(refused) tensor(s) not reported (error bound not below "
                    + "\(MatrixComparison.angleToleranceDegrees)°; see --json svd_error)")
            }
            let vacuous = rows.filter { $0.comparison?.bounds.wedinU.vacuous == true }.count
            if vacuous > 0 { byType.addFootnote("Wedin bound vacuous (gap too small) for \(vacuous) tensor(s)") }
            for violation in violations {
                byType.addFootnote("WARNING: \(violation.tensor): measured value above the \(violation.bound) bound")
            }
            return perTensor.render(width: width) + "\n" + byType.render(width: width)
        }

        // MARK: Plots

        /// The files `plots()` writes (checked for overwrites before computing).
        static let plotNames = ["singular_values.svg", "principal_angles.svg", "nss_by_layer.svg", "max_angle_by_layer.svg",
                                "overlaps_by_type.svg"]
        func plots() -> [(name: String, file: any ReportFile)] {
            let spectral = rows.filter { $0.comparison != nil }
            guard !spectral.isEmpty else { return [] }
            var files: [(name: String, file: any ReportFile)] = []
            let s = settings.spectral
            let note = "dtype \(settings.format.name), k \(s.k), rank \(s.rank), alpha \(s.alpha), float64"
            // The tensor whose spectrum moved most.
            let byNSS = spectral.max { ($0.comparison!.nss ?? 0) < ($1.comparison!.nss ?? 0) }!
            var spectra = LinePlot(title: "Singular values: \(byNSS.name.name)", xLabel: "index i", yLabel: "σ_i")
            spectra.yScale = .log10
            spectra.addSeries("base", x: byNSS.comparison!.singularValuesBase.indices.map { Double($0 + 1) },
                              y: byNSS.comparison!.singularValuesBase)
            spectra.addSeries("tuned", x: byNSS.comparison!.singularValuesTuned.indices.map { Double($0 + 1) },
                              y: byNSS.comparison!.singularValuesTuned)
            spectra.notes = ["tensor with the largest NSS (\(NumberFormat.scientific(byNSS.comparison!.nss ?? 0, digits: 2)))", note]
            files.append(("singular_values.svg", spectra))
            // The tensor whose top subspace rotated most.
            let byAngle = spectral.max { ($0.comparison!.angleMaxDegrees ?? -1) < ($1.comparison!.angleMaxDegrees ?? -1) }!
            var angles = LinePlot(title: "Principal angles: \(byAngle.name.name)", xLabel: "index i (ascending)",
                                  yLabel: "angle θ_i (degrees)", style: .linesAndMarkers)
            angles.yScale = .log10
            let c = byAngle.comparison!
            angles.addSeries("left (U)", x: c.anglesU.indices.map { Double($0 + 1) }, y: c.anglesU.map { $0 * 180 / .pi })
            angles.addSeries("right (V)", x: c.anglesV.indices.map { Double($0 + 1) }, y: c.anglesV.map { $0 * 180 / .pi })
            angles.notes = ["tensor with the largest principal angle; top-\(c.k) subspaces of base vs tuned", note]
            files.append(("principal_angles.svg", angles))
            // Across layers, one series per matrix type.
            let layered = spectral.allSatisfy { $0.name.layer != nil }
            var nss = LinePlot(title: "NSS across layers", xLabel: layered ? "layer" : "tensor index",
                               yLabel: "NSS", style: .linesAndMarkers)
            nss.yScale = .log10
            var maxAngle = LinePlot(title: "Max principal angle across layers", xLabel: layered ? "layer" : "tensor index",
                                    yLabel: "max(θ_U, θ_V) (degrees)", style: .linesAndMarkers)
            maxAngle.yScale = .log10
            for type in MatrixType.allCases {
                let selected = spectral.enumerated().filter { $0.element.name.type == type }
                guard !selected.isEmpty else { continue }
                let x = selected.map { Double(layered ? $0.element.name.layer! : $0.offset) }
                nss.addSeries(type.rawValue, x: x, y: selected.map { $0.element.comparison!.nss ?? .nan })
                maxAngle.addSeries(type.rawValue, x: x, y: selected.map { $0.element.comparison!.angleMaxDegrees ?? .nan })
            }
            nss.notes = [note]
            maxAngle.notes = [note]
            files.append(("nss_by_layer.svg", nss))
            files.append(("max_angle_by_layer.svg", maxAngle))
            files.append(("overlaps_by_type.svg", overlapsPlot()))
            return files + precisionFiles()
        }
    }
}
