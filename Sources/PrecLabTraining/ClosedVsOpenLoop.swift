import PrecLabFormats
import PrecLabReplay
import PrecLabReports
import PrecLabSupport

/// Two answers to "how much of the training vanished under this storage policy":
///
/// - closed loop: the run trained with the policy inside the loop (the forward pass
///   sees the stored weights, so what vanished changes the gradients that follow);
/// - open loop: the same run (same seed, prompts and sampling draws) trained in fp32,
///   its recorded fp32 stream replayed under the policy afterwards (`preclab replay`).
///
/// Per tensor, each side counts the weights that should have changed (closed: base +
/// Σ intended updates differs from the base in fp32; open: the fp32 truth differs) and
/// those whose stored bits changed (visible). Also replays the closed-loop run's own
/// stream under its policy, which must re-create the closed-loop weights exactly.
public struct ClosedVsOpenLoop: Sendable {
    public struct Row: Sendable {
        public var name: String
        public var params: Int
        public var closedChanged: Int
        public var closedVisible: Int
        public var openChanged: Int
        public var openVisible: Int
    }

    public var policy: ReplayPolicy
    public var format: FloatFormat
    public var steps: Int
    public var rows: [Row]
    /// Greedy evaluation accuracy at the end of: the fp32 run, the closed-loop run, and
    /// the open-loop replay's final stored weights.
    public var fp32Accuracy: Double
    public var closedAccuracy: Double
    public var openAccuracy: Double
    public var initialAccuracy: Double
    /// Mean reward over the last tenth of the steps of the fp32 and closed-loop runs.
    public var fp32TailReward: Double
    public var closedTailReward: Double
    /// Whether replaying the closed-loop run's own stream re-created its stored weights.
    public var closedLoopReproducedByReplay: Bool

    /// Runs the comparison from the two finished runs' directories (each with updates.bin).
    public static func measure(closed: TrainingSummary, closedStream: String, fp32: TrainingSummary,
                               fp32Stream: String, task: ModularAdditionTask) throws -> ClosedVsOpenLoop {
        let configuration = closed.configuration
        let replayConfiguration = ReplayConfiguration(
            format: configuration.format, rounding: configuration.rounding, seed: configuration.seed,
            policies: [.fp32, configuration.storage], threads: configuration.threads)
        let open = try StreamReplay.runKeepingState(path: fp32Stream, configuration: replayConfiguration)
        let own = try StreamReplay.runKeepingState(path: closedStream, configuration: replayConfiguration)
        let names = closed.parameterNames
        let recorded = open.result.tensors.map(\.tensor.name)
        var rows: [Row] = []
        var openWeights = fp32.finalWeights
        var reproduced = own.result.tensors.map(\.tensor.name) == names
        for (index, name) in names.enumerated() {
            guard let slot = recorded.firstIndex(of: name) else { continue }
            let tensor = open.result.tensors[slot]
            rows.append(Row(name: name, params: tensor.params, closedChanged: closed.intendedChanged[index],
                            closedVisible: closed.visible[index], openChanged: tensor.trueChanged,
                            openVisible: tensor.policies[configuration.storage]!.visibleChanged))
            openWeights[index] = open.engine.weightsBeforeAndAfter(configuration.storage, tensor: slot).after
                .map { Float($0) }
            if reproduced, let ownSlot = own.result.tensors.firstIndex(where: { $0.tensor.name == name }) {
                // The replay's stored weights against the ones the closed loop's forward pass
                // saw, bit for bit (NaN, which formats without a sign give for negative
                // values, matches NaN).
                let after = own.engine.weightsBeforeAndAfter(configuration.storage, tensor: ownSlot).after
                for (replayed, trained) in zip(after, closed.finalForwardWeights[index]) {
                    let value = Float(replayed)
                    if !(value.bitPattern == trained.bitPattern || (value.isNaN && trained.isNaN)) {
                        reproduced = false
                        break
                    }
                }
            }
        }
        let openAccuracy = Trainer.accuracy(closed.architecture, openWeights, task,
                                            task.evaluationSet(seed: configuration.seed))
        return ClosedVsOpenLoop(
            policy: configuration.storage, format: configuration.format, steps: configuration.steps, rows: rows,
            fp32Accuracy: fp32.finalAccuracy, closedAccuracy: closed.finalAccuracy, openAccuracy: openAccuracy,
            initialAccuracy: closed.initialAccuracy,
            fp32TailReward: TrainingReport.tailMean(fp32.logs.map(\.reward)),
            closedTailReward: TrainingReport.tailMean(closed.logs.map(\.reward)),
            closedLoopReproducedByReplay: reproduced)
    }

    var totals: Row {
        rows.reduce(Row(name: "total", params: 0, closedChanged: 0, closedVisible: 0, openChanged: 0, openVisible: 0)) {
            Row(name: "total", params: $0.params + $1.params, closedChanged: $0.closedChanged + $1.closedChanged,
                closedVisible: $0.closedVisible + $1.closedVisible, openChanged: $0.openChanged + $1.openChanged,
                openVisible: $0.openVisible + $1.openVisible)
        }
    }

    static func fraction(_ part: Int, _ whole: Int) -> Double { whole == 0 ? 0 : Double(part) / Double(whole) }

    public func table() -> TextTable {
        let percent = NumberStyle.percent(decimals: 2)
        var table = TextTable(
            title: "closed loop (\(policy.rawValue) \(format.name) in training) vs open loop (fp32 run replayed "
                + "under \(policy.rawValue) \(format.name)), \(steps) steps: % of weights",
            columns: [TextTable.Column("tensor", abbreviates: false), .number("params", style: .compactCount),
                      .number("closed: should chg", style: percent), .number("closed: visible", style: percent),
                      .number("open: should chg", style: percent), .number("open: visible", style: percent)])
        for row in rows + [totals] {
            let cells: [TableCell] = [
                .text(row.name), .integer(row.params),
                .number(ClosedVsOpenLoop.fraction(row.closedChanged, row.params)),
                .number(ClosedVsOpenLoop.fraction(row.closedVisible, row.params)),
                .number(ClosedVsOpenLoop.fraction(row.openChanged, row.params)),
                .number(ClosedVsOpenLoop.fraction(row.openVisible, row.params))]
            if row.name == "total" { table.addTotalRow(cells) } else { table.addRow(cells) }
        }
        table.addFootnote("should chg: base + sum of intended updates differs from the base in fp32 (closed loop), "
                          + "or the fp32 truth differs (open loop); visible: stored bits differ from the stored base")
        table.addFootnote("eval accuracy: start \(format3(initialAccuracy)), fp32 run \(format3(fp32Accuracy)), "
                          + "closed loop \(format3(closedAccuracy)), open-loop replay \(format3(openAccuracy))")
        table.addFootnote("closed-loop run re-created by replaying its own stream under \(policy.rawValue): "
                          + (closedLoopReproducedByReplay ? "yes, bit for bit" : "NO"))
        return table
    }

    func format3(_ value: Double) -> String { NumberStyle.fixed(decimals: 3).format(value) }

    public func json() -> JSONValue {
        let total = totals
        return .object(JSONObject([
            ("policy", .string(policy.rawValue)), ("dtype", .string(format.name)), ("steps", .integer(Int64(steps))),
            ("params", .integer(Int64(total.params))),
            ("closed_should_change", .integer(Int64(total.closedChanged))),
            ("closed_visible", .integer(Int64(total.closedVisible))),
            ("open_should_change", .integer(Int64(total.openChanged))),
            ("open_visible", .integer(Int64(total.openVisible))),
            ("closed_visible_fraction", .number(ClosedVsOpenLoop.fraction(total.closedVisible, total.params))),
            ("open_visible_fraction", .number(ClosedVsOpenLoop.fraction(total.openVisible, total.params))),
            ("initial_accuracy", .number(initialAccuracy)), ("fp32_accuracy", .number(fp32Accuracy)),
            ("closed_accuracy", .number(closedAccuracy)), ("open_accuracy", .number(openAccuracy)),
            ("fp32_tail_reward", .number(fp32TailReward)), ("closed_tail_reward", .number(closedTailReward)),
            ("closed_reproduced_by_replay", .bool(closedLoopReproducedByReplay)),
            ("tensors", .array(rows.map { row in
                .object(JSONObject([
                    ("name", .string(row.name)), ("params", .integer(Int64(row.params))),
                    ("closed_should_change", .integer(Int64(row.closedChanged))),
                    ("closed_visible", .integer(Int64(row.closedVisible))),
                    ("open_should_change", .integer(Int64(row.openChanged))),
                    ("open_visible", .integer(Int64(row.openVisible))),
                ]))
            })),
        ]))
    }
}
