import PrecLabReports
import PrecLabSupport

/// The files a run writes besides checkpoints and the stream: `log.csv` (one row per
/// step), `summary.json`, and SVG curves.
public enum TrainingReport {
    public static let csvHeader = ["step", "lr", "loss", "reward", "accuracy", "eval_accuracy", "kl", "grad_norm",
                                   "update_rms_ratio", "vanished_fraction"]

    public static func csv(_ logs: [StepLog]) -> CSVTable {
        var table = CSVTable(header: csvHeader)
        for log in logs {
            table.addRow([.integer(log.step), .number(log.learningRate), .number(log.loss), .number(log.reward),
                          .number(log.accuracy), log.evaluationAccuracy.map { .number($0) } ?? .empty,
                          .number(log.kl), .number(log.gradientNorm), .number(log.updateToWeightRMS),
                          .number(log.vanishedFraction)])
        }
        return table
    }

    public static func json(_ summary: TrainingSummary) -> JSONValue {
        let configuration = summary.configuration
        var tensors: [JSONValue] = []
        for index in summary.parameterNames.indices {
            tensors.append(.object(JSONObject([
                ("name", .string(summary.parameterNames[index])),
                ("params", .integer(Int64(summary.parameterCounts[index]))),
                ("visible", .integer(Int64(summary.visible[index]))),
                ("intended_changed", .integer(Int64(summary.intendedChanged[index]))),
            ])))
        }
        let last = summary.logs.last
        return .object(JSONObject([
            ("method", .string(configuration.method.rawValue)),
            ("bits", .integer(Int64(summary.bits))),
            ("hidden", .array(summary.architecture.hidden.map { .integer(Int64($0)) })),
            ("activation", .string(summary.architecture.activation.rawValue)),
            ("steps", .integer(Int64(configuration.steps))),
            ("batch", .integer(Int64(configuration.batchSize))),
            ("group", .integer(Int64(configuration.groupSize))),
            ("lr", .number(configuration.learningRate)),
            ("start_weight_rms", .number(summary.startWeightRMS)),
            ("lr_relative", .number(summary.startWeightRMS > 0 ? configuration.learningRate / summary.startWeightRMS : 0)),
            ("warmup", .integer(Int64(configuration.warmupSteps))),
            ("weight_decay", .number(configuration.weightDecay)),
            ("kl_weight", .number(configuration.klWeight)),
            ("storage", .string(configuration.storage.rawValue)),
            ("dtype", .string(configuration.format.name)),
            ("rounding", .string(configuration.rounding.mode.rawValue)),
            ("seed", .integer(Int64(bitPattern: configuration.seed))),
            ("params", .integer(Int64(summary.parameters))),
            ("initial_accuracy", .number(summary.initialAccuracy)),
            ("final_accuracy", .number(summary.finalAccuracy)),
            ("final_reward", .number(last?.reward ?? 0)),
            ("mean_reward_last_10pct", .number(tailMean(summary.logs.map(\.reward)))),
            ("final_kl", .number(last?.kl ?? 0)),
            ("visible_fraction", .number(summary.visibleFraction)),
            ("intended_changed_fraction", .number(summary.intendedChangedFraction)),
            ("vanished_update_fraction", .number(summary.vanishedFraction)),
            ("mean_update_rms_ratio", .number(summary.logs.map(\.updateToWeightRMS).reduce(0, +)
                / Double(max(1, summary.logs.count)))),
            ("tensors", .array(tensors)),
        ]))
    }

    /// Mean of the last tenth of a series (at least one value).
    public static func tailMean(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        let tail = values.suffix(max(1, values.count / 10))
        return tail.reduce(0, +) / Double(tail.count)
    }

    public static func plots(_ summary: TrainingSummary) -> [(name: String, file: any ReportFile)] {
        let logs = summary.logs
        let steps = logs.map { Double($0.step) }
        let title = "\(summary.configuration.method.rawValue), \(summary.configuration.storage.rawValue)"
            + (summary.configuration.storage == .fp32 ? "" : " \(summary.configuration.format.name)")
        var quality = LinePlot(title: "Reward and accuracy (\(title))", xLabel: "step", yLabel: "fraction")
        quality.yRange = 0...1
        quality.addSeries("reward", x: steps, y: logs.map(\.reward))
        let evaluated = logs.filter { $0.evaluationAccuracy != nil }
        quality.addSeries("eval accuracy", x: [0] + evaluated.map { Double($0.step) },
                          y: [summary.initialAccuracy] + evaluated.map { $0.evaluationAccuracy! })
        var loss = LinePlot(title: "Loss (\(title))", xLabel: "step", yLabel: "loss")
        loss.addSeries("loss", x: steps, y: logs.map(\.loss))
        if summary.configuration.method != .pretrain { loss.addSeries("KL to base", x: steps, y: logs.map(\.kl)) }
        var updates = LinePlot(title: "Update size and vanished updates (\(title))", xLabel: "step", yLabel: "ratio")
        updates.yScale = .log10
        updates.addSeries("update RMS / weight RMS", x: steps, y: logs.map(\.updateToWeightRMS))
        if summary.configuration.storage != .fp32 {
            updates.addSeries("vanished fraction", x: steps, y: logs.map(\.vanishedFraction))
        }
        return [("reward.svg", quality), ("loss.svg", loss), ("updates.svg", updates)]
    }

    static func write(_ summary: TrainingSummary, to directory: ReportDirectory) throws -> [String] {
        try directory.write([("log.csv", csv(summary.logs)), ("summary.json", json(summary))] + plots(summary))
    }
}
