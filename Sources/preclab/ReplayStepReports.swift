import PrecLabReplay
import PrecLabReports

/// The step-level views of `replay --plots DIR` (a CSV and an SVG each, named in
/// `ReplayPlot`) and the table of
/// hidden entries split by what hid them.
enum ReplayStepReports {
    static func files(_ result: ReplayResult) -> [(name: String, file: any ReportFile)] {
        guard let views = result.stepViews else { return [] }
        let policies = result.configuration.policies
        let dtype = result.configuration.format.name

        var perStep = CSVTable(header: ["step"] + policies.map(\.rawValue))
        for (index, step) in views.steps.enumerated() {
            perStep.addRow([.integer(Int(truncatingIfNeeded: step))]
                           + policies.map { .integer(views.changedInStep[$0]?[index] ?? 0) })
        }
        var plot = LinePlot(title: "Stored values changed in each step (\(dtype))", xLabel: "step",
                            yLabel: "weights changed since the previous step", style: .lines)
        let steps = views.steps.map(Double.init)
        for policy in policies {
            plot.addSeries(policy == .fp32 ? "fp32 truth" : policy.rawValue, x: steps,
                           y: (views.changedInStep[policy] ?? []).map(Double.init))
        }
        plot.notes = result.warnings

        let labels = VisibilityHistogram.labels
        var ratio = CSVTable(header: ["bin", "element_steps", "changed", "unchanged"])
        var histogram = BarPlot(title: "|u_t| / half-ULP of the pure policy's stored w_t (\(dtype))",
                                xLabel: "ratio (log2 bins)", yLabel: "element-steps", categories: labels)
        if let counts = views.pureRatioHistogram, let changed = views.pureRatioChanged {
            for (index, label) in labels.enumerated() {
                ratio.addRow([.text(label), .integer(counts[index]), .integer(changed[index]),
                              .integer(counts[index] - changed[index])])
            }
            histogram.addSeries("stored value changed", values: changed.map(Double.init))
            histogram.addSeries("update vanished", values: zip(counts, changed).map { Double($0 - $1) })
        } else {
            histogram.notes.append("the pure policy did not run")
        }
        histogram.yScale = .log10
        histogram.notes += result.warnings
        return [(ReplayPlot.changedPerStepTable.fileName, perStep), (ReplayPlot.changedPerStep.fileName, plot),
                (ReplayPlot.pureUpdateRatioTable.fileName, ratio), (ReplayPlot.pureUpdateRatio.fileName, histogram)]
    }

    /// A row per stored policy: hidden entries split three ways, and spurious ones.
    static func hiddenSplit(_ result: ReplayResult) -> TextTable {
        var table = TextTable(title: "what hid the hidden entries (I: the stored base's rounding interval)", columns: [
            .text("policy"), .number("hidden", style: .count), .number("never left I", style: .count),
            .number("returned", style: .count), .number("swamped", style: .count),
            .number("spurious", style: .count),
        ])
        for policy in result.configuration.policies where policy != .fp32 {
            let metrics = result.total(policy)
            table.addRow([.text(policy.rawValue), .integer(metrics.hidden), .integer(metrics.hiddenNeverLeft),
                          .integer(metrics.hiddenReturned), .integer(metrics.hiddenSwamped),
                          .integer(metrics.spurious)])
        }
        table.addFootnote("never left I: the fp32 truth stayed in I; returned: it left I and came back; "
                          + "swamped: it ended outside I but storage did not change")
        table.addFootnote("spurious: visible, with a stored change of the opposite sign to the truth's")
        return table
    }
}
