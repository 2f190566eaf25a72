import PrecLabReports
import PrecLabSpectral
import PrecLabSupport

/// The plots of a comparison report, named once: the pre-flight check of an output
/// directory and `CheckpointComparison.plots()` both use these names.
public enum ComparisonPlot: String, CaseIterable, Sendable {
    case singularValues = "singular_values.svg"
    case principalAngles = "principal_angles.svg"
    case nssByLayer = "nss_by_layer.svg"
    case maxAngleByLayer = "max_angle_by_layer.svg"
    /// Observed overlaps by matrix type beside their magnitude baselines.
    case overlapsByType = "overlaps_by_type.svg"
    /// Only when both checkpoints are wider than the comparison format.
    case precisionHiddenTable = "precision_hidden.csv"
    case precisionHidden = "precision_hidden.svg"

    public var fileName: String { rawValue }
}

extension TopSVDMethod {
    /// The word reports use: auto, exact or randomized.
    public var reportName: String {
        switch self {
        case .automatic: return "auto"
        case .exact: return "exact"
        case .randomized: return "randomized"
        }
    }
}

/// The encodings of a comparison: JSON (every number), CSV (a row per tensor), the
/// terminal tables and SVG plots. See docs/reports.md for the keys.
extension CheckpointComparison {
    // MARK: JSON

    public func json() -> JSONValue {
        var root = JSONObject()
        root["base"] = .string(basePath)
        root["tuned"] = .string(tunedPath)
        root["options"] = .object(optionsJSON())
        root["tensors"] = .array(tensors.map { .object(rowJSON($0)) })
        var totalObject = summaryJSON(total)
        for (key, value) in precisionJSON(precisionTotal, histograms: false).pairs { totalObject[key] = value }
        root["total"] = .object(totalObject)
        root["precision_ratio_bins"] = .array(PrecisionHiddenChanges.labels.map { .string($0) })
        var byType = JSONObject()
        for type in types { byType[type.rawValue] = .object(summaryJSON(summary(of: type))) }
        root["by_type"] = .object(byType)
        root["skipped"] = .array(skipped.map {
            .object(JSONObject([("name", .string($0.name)), ("scope", .string($0.scope.rawValue)), ("reason", .string($0.reason))]))
        })
        root["bound_violations"] = .array(boundViolations.map {
            .object(JSONObject([("name", .string($0.tensor)), ("bound", .string($0.bound))]))
        })
        return .object(root)
    }

    func optionsJSON() -> JSONObject {
        let s = options.spectral
        return JSONObject([
            ("dtype", .string(options.format.name)),
            ("k", .int(s.k)), ("rank", .int(s.rank)), ("alpha", .number(s.alpha)),
            ("tensors", options.selection.pattern.map { .string($0) } ?? .null),
            ("svd", .string(options.spectral.method.reportName)),
            ("oversampling", .int(s.randomized.oversampling)),
            ("power_iterations", .int(s.randomized.powerIterations)),
            ("seed", .integer(Int64(bitPattern: s.randomized.seed))),
            ("precision", "float64"),
            ("signed_zero_changes", .bool(options.signedZeroChanges)),
            ("blas_threads_large_matrix", .int(Int(BLASThreads.largeMatrixThreads))),
        ])
    }

    func rowJSON(_ row: ComparedTensor) -> JSONObject {
        var o = ReportCells.tensorJSON(row.name, shape: row.shape)
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
            o["alpha"] = .number(options.spectral.alpha)
            o["k"] = .int(options.spectral.k)
            o["rank"] = .int(options.spectral.rank)
        }
        o["note"] = row.spectralNote.map { .string($0) } ?? .null
        for (key, value) in precisionJSON(row.precision, histograms: true).pairs { o[key] = value }
        return o
    }

    /// The precision-hidden keys of a tensor or the total: null when an input is
    /// already in the comparison format (the total: when no tensor has wide inputs;
    /// `histograms` also nulls the histogram keys).
    func precisionJSON(_ precision: PrecisionHiddenChanges?, histograms: Bool) -> JSONObject {
        if let precision { return precision.json() }
        let keys = ["fp32_changed", "hidden_by_precision"]
            + (histograms ? ["precision_ratio_histogram", "precision_ratio_visible"] : [])
        return JSONObject(keys.map { ($0, JSONValue.null) })
    }

    func summaryJSON(_ s: WeightedSummary<ComparisonMetric>) -> JSONObject {
        var o = JSONObject()
        o["tensors"] = .int(s.tensors)
        o["params"] = .int(s.parameters)
        o["changed"] = .int(s.changed)
        o["sparsity"] = ReportCells.json(s.sparsity)
        for metric in ComparisonMetric.allCases { o[metric.rawValue] = ReportCells.json(s.mean(metric)) }
        o["alpha_baseline"] = .number(options.spectral.alpha)
        return o
    }

    // MARK: CSV

    public func csv() -> CSVTable {
        var table = CSVTable(header: [
            "name", "layer", "type", "shape", "params", "changed", "sparsity", "nss",
            "angle_u_max_deg", "angle_v_max_deg", "angle_u_mean_deg", "angle_v_mean_deg",
            "principal_overlap", "principal_overlap_magnitude", "low_overlap", "low_overlap_magnitude",
            "control_overlap", "control_overlap_random", "control_overlap_magnitude", "energy_top_k", "delta_frobenius",
            "delta_spectral", "stable_rank", "wedin_vacuous", "svd", "angle_error_bound_deg", "alpha", "k", "rank",
            "fp32_changed", "hidden_by_precision", "note",
        ])
        for row in tensors {
            let c = row.comparison
                table.addRow([
                .text(row.name.name), row.name.layer.map { .integer($0) } ?? .empty, .text(row.name.type.rawValue),
                .text(row.shape.map(String.init).joined(separator: "x")), .integer(row.params), .integer(row.changed),
                .number(row.sparsity), ReportCells.metric(c?.nss), ReportCells.metric(c?.angleUMaxDegrees), ReportCells.metric(c?.angleVMaxDegrees),
                ReportCells.metric(c?.angleUMeanDegrees), ReportCells.metric(c?.angleVMeanDegrees), ReportCells.metric(c?.principalOverlap),
                ReportCells.metric(c?.principalOverlapMagnitude), ReportCells.metric(c?.lowOverlap),
                ReportCells.metric(c?.lowOverlapMagnitude), ReportCells.metric(c?.controlOverlap),
                ReportCells.metric(c?.controlOverlapRandom), ReportCells.metric(c?.controlOverlapMagnitude),
                ReportCells.metric(c?.energyTopK), ReportCells.metric(c?.deltaFrobenius),
                ReportCells.metric(c?.deltaSpectral), ReportCells.metric(c?.stableRank),
                c.map { .text($0.bounds.wedinU.vacuous ? "true" : "false") } ?? .empty,
                c.map { .text($0.randomized ? "randomized" : "exact") } ?? .empty,
                ReportCells.metric(c?.angleErrorBoundDegrees),
                .number(options.spectral.alpha), .integer(c?.k ?? options.spectral.k),
                .integer(c?.rank ?? options.spectral.rank),
                row.precision.map { .integer($0.sourceChanged) } ?? .empty,
                row.precision.map { .integer($0.hiddenByPrecision) } ?? .empty,
                row.spectralNote.map { .text($0) } ?? .empty,
            ])
        }
        return table
    }

    // MARK: Terminal

    public func text(width: Int) -> String {
        var perTensor = TextTable(title: "preclab compare: \(basePath) -> \(tunedPath) (\(options.format.name) codes)",
                                  columns: ReportCells.tensorColumns(shape: false) + [
            .number("unchanged", style: .percent(decimals: 1)), .number("NSS", style: .scientific(digits: 2)),
            .number("maxθ", style: .general(significant: 3)),
            .number("∩princ", style: .fixed(decimals: 3)), .number("mag", style: .fixed(decimals: 3)),
            .number("∩low", style: .fixed(decimals: 3)), .number("mag", style: .fixed(decimals: 3)),
            .number("energy_k", style: .fixed(decimals: 3)),
        ])
        for row in tensors {
            let c = row.comparison
            perTensor.addRow(ReportCells.tensorCells(row.name, shape: nil, params: row.params) + [
                              .number(row.sparsity), ReportCells.metric(c?.nss), ReportCells.metric(c?.angleMaxDegrees),
                              ReportCells.metric(c?.principalOverlap), ReportCells.metric(c?.principalOverlapMagnitude),
                              ReportCells.metric(c?.lowOverlap), ReportCells.metric(c?.lowOverlapMagnitude),
                              ReportCells.metric(c?.energyTopK)])
        }
        var byType = ReportCells.byTypeTable(
            title: "by matrix type (parameter-weighted; random overlap baseline α = \(options.spectral.alpha))",
            columns: [
                .number("unchanged", style: .percent(decimals: 1)), .number("NSS", style: .scientific(digits: 2)),
                .number("maxθU°", style: .general(significant: 3)), .number("maxθV°", style: .general(significant: 3)),
                .number("∩princ", style: .fixed(decimals: 3)), .number("rand", style: .fixed(decimals: 3)),
                .number("mag", style: .fixed(decimals: 3)), .number("∩low", style: .fixed(decimals: 3)),
                .number("rand", style: .fixed(decimals: 3)), .number("mag", style: .fixed(decimals: 3)),
            ],
            types: types, summary: summary(of:), total: total) { s in
                [s.sparsity, s.mean(.nss), s.mean(.angleUMax), s.mean(.angleVMax), s.mean(.principalOverlap),
                 s.mean(.principalOverlapRandom), s.mean(.principalOverlapMagnitude), s.mean(.lowOverlap),
                 s.mean(.lowOverlapRandom), s.mean(.lowOverlapMagnitude)].map(ReportCells.metric)
            }
        let s = options.spectral
        byType.addFootnote("tensor names are shown without a leading 'model.' and a trailing '.weight'; maxθ = max(maxθU, maxθV) in degrees; shapes in the CSV and JSON reports")
        // Randomized-SVD parameters only where a randomized SVD may run.
        let randomizedNote = s.method == .exact ? ""
            : " (oversampling \(s.randomized.oversampling), \(s.randomized.powerIterations) power iterations)"
        byType.addFootnote("options: dtype \(options.format.name), k \(s.k), rank \(s.rank), alpha \(s.alpha), svd \(s.method.reportName)\(randomizedNote), float64; angles in degrees")
        var groups: [(String, [String])] = []
        for skip in skipped {
            let key = (skip.scope == .tensor ? "not compared: " : "") + skip.reason
            if let index = groups.firstIndex(where: { $0.0 == key }) { groups[index].1.append(skip.name) }
            else { groups.append((key, [skip.name])) }
        }
        for (reason, names) in groups {
            let shown = names.prefix(4).joined(separator: ", ") + (names.count > 4 ? ", ... (\(names.count - 4) more; see the JSON report)" : "")
            byType.addFootnote("skipped (\(names.count)) \(reason): \(shown)")
        }
        byType.addFootnote("overlaps: ∩ = share of changed entries in the mask; rand = random baseline (alpha); "
            + "mag = magnitude baseline, the overlap expected if changes depended only on the binade of W0 "
            + "(observed ≈ mag: precision explains it; see docs/metrics.md)")
        if let precision = precisionTotal {
            byType.addFootnote("fp32 inputs: \(precision.sourceChanged) values changed, \(precision.storedChanged) visible in "
                + "\(options.format.name), \(precision.hiddenByPrecision) hidden by precision")
        }
        let refused = tensors.filter { $0.comparison?.angleNote != nil }.count
        if refused > 0 {
            byType.addFootnote("randomized SVD: angles of \(refused) tensor(s) not reported (error bound not below "
                + "\(MatrixComparison.angleToleranceDegrees)°; see svd_error in the JSON report)")
        }
        let vacuous = tensors.filter { $0.comparison?.bounds.wedinU.vacuous == true }.count
        if vacuous > 0 { byType.addFootnote("Wedin bound vacuous (gap too small) for \(vacuous) tensor(s)") }
        for violation in boundViolations {
            byType.addFootnote("WARNING: \(violation.tensor): measured value above the \(violation.bound) bound")
        }
        return perTensor.render(width: width) + "\n" + byType.render(width: width)
    }

    // MARK: Plots

    public func plots() -> [(name: String, file: any ReportFile)] {
        let spectral = tensors.filter { $0.comparison != nil }
        guard !spectral.isEmpty else { return [] }
        var files: [(name: String, file: any ReportFile)] = []
        let s = options.spectral
        let note = "dtype \(options.format.name), k \(s.k), rank \(s.rank), alpha \(s.alpha), float64"
        // The tensor whose spectrum moved most.
        let byNSS = spectral.max { ($0.comparison!.nss ?? 0) < ($1.comparison!.nss ?? 0) }!
        var spectra = LinePlot(title: "Singular values: \(byNSS.name.name)", xLabel: "index i", yLabel: "σ_i")
        spectra.yScale = .log10
        spectra.addSeries("base", x: byNSS.comparison!.singularValuesBase.indices.map { Double($0 + 1) },
                          y: byNSS.comparison!.singularValuesBase)
        spectra.addSeries("tuned", x: byNSS.comparison!.singularValuesTuned.indices.map { Double($0 + 1) },
                          y: byNSS.comparison!.singularValuesTuned)
        spectra.notes = ["tensor with the largest NSS (\(NumberFormat.scientific(byNSS.comparison!.nss ?? 0, digits: 2)))", note]
        files.append((ComparisonPlot.singularValues.fileName, spectra))
        // The tensor whose top subspace rotated most.
        let byAngle = spectral.max { ($0.comparison!.angleMaxDegrees ?? -1) < ($1.comparison!.angleMaxDegrees ?? -1) }!
        var angles = LinePlot(title: "Principal angles: \(byAngle.name.name)", xLabel: "index i (ascending)",
                              yLabel: "angle θ_i (degrees)", style: .linesAndMarkers)
        angles.yScale = .log10
        let c = byAngle.comparison!
        angles.addSeries("left (U)", x: c.anglesU.indices.map { Double($0 + 1) }, y: c.anglesU.map { $0 * 180 / .pi })
        angles.addSeries("right (V)", x: c.anglesV.indices.map { Double($0 + 1) }, y: c.anglesV.map { $0 * 180 / .pi })
        angles.notes = ["tensor with the largest principal angle; top-\(c.k) subspaces of base vs tuned", note]
        files.append((ComparisonPlot.principalAngles.fileName, angles))
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
        files.append((ComparisonPlot.nssByLayer.fileName, nss))
        files.append((ComparisonPlot.maxAngleByLayer.fileName, maxAngle))
        files.append((ComparisonPlot.overlapsByType.fileName, overlapsPlot()))
        return files + precisionFiles()
    }

    /// Observed overlaps per matrix type beside their magnitude baselines (bars) and
    /// the random baseline α (line).
    func overlapsPlot() -> BarPlot {
        let present = types
        let summaries = present.map { summary(of: $0) }
        var plot = BarPlot(title: "Where the changes are: mask overlaps by matrix type", xLabel: "matrix type",
                           yLabel: "|mask ∩ M| / |M|", categories: present.map(\.rawValue))
        plot.yRange = 0...1
        plot.addSeries("principal", values: summaries.map { $0.mean(.principalOverlap) ?? .nan })
        plot.addSeries("principal, magnitude baseline", values: summaries.map { $0.mean(.principalOverlapMagnitude) ?? .nan })
        plot.addSeries("low-|W0|", values: summaries.map { $0.mean(.lowOverlap) ?? .nan })
        plot.addSeries("low-|W0|, magnitude baseline", values: summaries.map { $0.mean(.lowOverlapMagnitude) ?? .nan })
        plot.referenceLines = [ReferenceLine(y: options.spectral.alpha, label: "random (α)")]
        plot.notes = ["dtype \(options.format.name); magnitude baseline: expected overlap if changes depended only on the binade of W0"]
        return plot
    }

    /// The histogram of |W1 − W0| / half-ULP(stored W0) over tensors with wide inputs,
    /// as a table and a plot (none when no tensor has wide inputs).
    func precisionFiles() -> [(name: String, file: any ReportFile)] {
        guard let total = precisionTotal else { return [] }
        let labels = PrecisionHiddenChanges.labels
        var csv = CSVTable(header: ["bin", "weights", "visible", "hidden"])
        for bin in labels.indices {
            csv.addRow([.text(labels[bin]), .integer(total.histogram[bin]), .integer(total.visibleByBin[bin]),
                        .integer(total.histogram[bin] - total.visibleByBin[bin])])
        }
        var plot = BarPlot(title: "|W1 − W0| / half-ULP of the stored W0 (\(options.format.name))",
                           xLabel: "ratio (log2 bins)", yLabel: "weights", categories: labels)
        plot.addSeries("visible in \(options.format.name)", values: total.visibleByBin.map(Double.init))
        plot.addSeries("hidden by precision", values: zip(total.histogram, total.visibleByBin).map { Double($0 - $1) })
        plot.yScale = .log10
        plot.notes = ["\(total.sourceChanged) values changed in the inputs, \(total.hiddenByPrecision) of them hidden by \(options.format.name)"]
        return [(ComparisonPlot.precisionHiddenTable.fileName, csv), (ComparisonPlot.precisionHidden.fileName, plot)]
    }
}
