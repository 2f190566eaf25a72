import Foundation
@testable import PrecLabReports

/// Example plots shared by the SVG tests and by the visual check: set
/// PRECLAB_PLOT_EXAMPLES=/some/dir and run `swift test --filter SVGPlotTests` to get
/// one SVG of each kind there.
enum PlotExamples {
    static func lineLogLog() -> LinePlot {
        var plot = LinePlot(title: "Hidden updates vs learning rate", xLabel: "learning rate",
                            yLabel: "fraction of updates hidden", style: .linesAndMarkers)
        plot.xScale = .log10
        plot.yScale = .log10
        let rates = [1e-7, 3e-7, 1e-6, 3e-6, 1e-5, 3e-5, 1e-4]
        plot.addSeries("bf16 nearest", x: rates, y: [0.999, 0.995, 0.99, 0.95, 0.8, 0.5, 0.2])
        plot.addSeries("bf16 stochastic", x: rates, y: [0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
        plot.addSeries("fp16", x: rates, y: [0.5, 0.2, 0.07, 0.02, 0.006, 0.002, 0])
        plot.addSeries("fp8 <e4m3> \"sat\" & co", x: rates, y: [1, 1, 1, 0.999, 0.99, 0.97, .nan])
        plot.referenceLines = [ReferenceLine(y: 0.01, label: "1% hidden")]
        return plot
    }

    static func lineLinear() -> LinePlot {
        var plot = LinePlot(title: "Visible updates per step", xLabel: "step", yLabel: "fraction visible")
        let steps = (0..<200).map(Double.init)
        plot.addSeries("model.layers.13.self_attn.q_proj.weight", x: steps,
                       y: steps.map { 0.012 + 0.004 * sin($0 / 9) + 0.0001 * $0 })
        plot.addSeries("model.layers.13.mlp.down_proj.weight", x: steps,
                       y: steps.map { $0 == 50 ? .nan : 0.02 - 0.00005 * $0 })
        plot.referenceLines = [ReferenceLine(y: 0.015, label: "baseline 1.5%")]
        plot.notes = ["bf16 storage, round to nearest even; lr 1e-6"]
        return plot
    }

    static func scatter() -> LinePlot {
        var plot = LinePlot.scatter(title: "Principal angle vs spectral drift", xLabel: "NSS",
                                    yLabel: "max principal angle (degrees)")
        var x: [Double] = [], y: [Double] = [], x2: [Double] = [], y2: [Double] = []
        for index in 0..<60 {
            let t = Double(index)
            x.append(0.001 + 0.0004 * t + 0.0003 * sin(t * 1.7))
            y.append(2 + 0.5 * t + 3 * cos(t * 2.3))
            x2.append(0.004 + 0.0003 * t + 0.0002 * cos(t))
            y2.append(10 + 0.3 * t + 2 * sin(t * 1.1))
        }
        plot.addSeries("q_proj", x: x, y: y)
        plot.addSeries("o_proj", x: x2, y: y2)
        return plot
    }

    static func histogram() -> BarPlot {
        let exponents = Array(-12...4)
        var plot = BarPlot(title: "Update size relative to half an ulp of w", xLabel: "|Δw| / (ulp(w)/2), log2 bins",
                           yLabel: "entries", categories: exponents.map(BarPlot.log2BinLabel))
        plot.yScale = .log10
        plot.addSeries("bf16", values: exponents.map { e in e > 2 ? 0 : 1e6 * exp(-Double((e + 4) * (e + 4)) / 10) + 3 })
        plot.addSeries("fp16", values: exponents.map { e in 2e5 * exp(-Double((e + 1) * (e + 1)) / 8) + 1 })
        plot.referenceLines = [ReferenceLine(y: 1e4, label: "10k entries")]
        return plot
    }

    static func bars() -> BarPlot {
        var plot = BarPlot(title: "bf16 parameters unchanged by matrix type", xLabel: "matrix type",
                           yLabel: "unchanged (%)", categories: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        plot.addSeries("RL run", values: [53.8, 55.1, 49.0, 47.2, 58.9, 57.0, 51.3])
        plot.addSeries("SFT run", values: [2.8, 3.1, 2.2, 1.9, 4.0, 3.6, 2.5])
        plot.referenceLines = [ReferenceLine(y: 36.3, label: "ProRL-v2 whole model")]
        return plot
    }

    static func smallHeatMap() -> HeatMap {
        let rows = 24, columns = 40
        var values: [Double] = []
        for row in 0..<rows {
            for column in 0..<columns {
                values.append(row == 5 && column == 7 ? .nan : Double(row * columns + column) / Double(rows * columns - 1))
            }
        }
        var map = HeatMap(title: "Update mask density (small)", rows: rows, columns: columns, values: values)
        map.colorLabel = "fraction updated"
        return map
    }

    static func largeHeatMap() -> HeatMap {
        let rows = 1024, columns = 1536
        var values = [Double](repeating: 0, count: rows * columns)
        for row in 0..<rows {
            for column in 0..<columns {
                // Row stripes plus a smooth column trend, the shape [MK] reports for Q/K/V.
                let stripe = row % 64 < 8 ? 0.5 : 0.0
                values[row * columns + column] = min(1, stripe + 0.5 * Double(column) / Double(columns)
                    + 0.1 * sin(Double(row) / 40))
            }
        }
        var map = HeatMap(title: "Consensus ratio, layer 13 q_proj", rows: rows, columns: columns, values: values)
        map.colorLabel = "consensus"
        map.xLabel = "input dimension"
        map.yLabel = "output dimension"
        return map
    }

    /// Awkward inputs: nothing to plot, one point, many bins, a huge log range, many series.
    static func edgeCases() -> [(name: String, svg: String)] {
        var empty = LinePlot(title: "Nothing survived the filters", xLabel: "step", yLabel: "value")
        empty.addSeries("a", x: [], y: [])
        var single = LinePlot(title: "One point", xLabel: "x", yLabel: "y")
        single.addSeries("only", x: [3], y: [0.5])
        var wide = LinePlot(title: "Tiny to huge", xLabel: "x", yLabel: "y", style: .linesAndMarkers)
        wide.xScale = .log10
        wide.yScale = .log10
        wide.addSeries("s", x: [1e-300, 1e-100, 1, 1e100, 1e300], y: [1e-20, 1e-5, 1, 1e5, 1e20])
        var many = LinePlot(title: "Thirty series", xLabel: "step", yLabel: "value")
        for index in 0..<30 { many.addSeries("series \(index)", y: (0..<20).map { Double($0 * (index + 1)) }) }
        var bins = BarPlot(title: "Fifty-one log2 bins", xLabel: "bin", yLabel: "count",
                           categories: (-40...10).map(BarPlot.log2BinLabel))
        bins.addSeries("a", values: (-40...10).map { Double(($0 + 41) * 3) })
        var negative = BarPlot(title: "Signed changes", xLabel: "tensor", yLabel: "mean Δ",
                               categories: ["model.layers.0.self_attn.q_proj.weight", "k", "v", "o"])
        negative.addSeries("run A", values: [-0.002, 0.001, 0.0035, -0.0005])
        negative.addSeries("run B", values: [0.001, -0.0015, 0.002, .nan])
        var tall = HeatMap(title: "Row ratios (tall, data range)", rows: 300, columns: 3,
                           values: (0..<900).map { Double($0 % 7) / 3 - 1 })
        tall.colorRange = .data
        return [("edge-empty.svg", empty.svg()), ("edge-single.svg", single.svg()), ("edge-wide-log.svg", wide.svg()),
                ("edge-many-series.svg", many.svg()), ("edge-many-bins.svg", bins.svg()),
                ("edge-negative-bars.svg", negative.svg()), ("edge-tall-heatmap.svg", tall.svg())]
    }

    static func all() -> [(name: String, svg: String)] {
        edgeCases() + [
            ("line-loglog.svg", lineLogLog().svg()),
            ("line-linear.svg", lineLinear().svg()),
            ("scatter.svg", scatter().svg()),
            ("histogram.svg", histogram().svg()),
            ("bars.svg", bars().svg()),
            ("heatmap-small.svg", smallHeatMap().svg()),
            ("heatmap-large.svg", largeHeatMap().svg()),
        ]
    }
}
