import PrecLabFormats
import PrecLabReplay
import PrecLabReports
import PrecLabSupport
import PrecLabTraining

/// `preclab train`: real closed-loop training of a small MLP policy on a verifiable
/// task, with the storage policy inside the loop and the update stream recorded.
enum TrainCommand: Command {
    static let name = "train"
    static let summary = "train an MLP policy for real (pretrain, sft, rl) with storage in the loop, recording the stream"
    static let help = """
    usage: preclab train --method pretrain|sft|rl -o DIR [--base CHECKPOINT] [options]

    Trains a policy network on a verifiable task and writes to DIR: base and final
    checkpoints (base.safetensors, final.safetensors in fp32, and base.DTYPE.safetensors,
    final.DTYPE.safetensors in the storage format), the update stream updates.bin
    (update-stream v1), a per-step log.csv, summary.json and SVG curves (reward.svg,
    loss.svg, updates.svg). docs/train.md states the model, task, losses and optimizer.

    Task: given a and b as bit vectors (N bits each, +1/-1 features), answer
    (a + b) mod 2^N; reward 1 if correct, else 0. Model: input -> hidden layers
    (model.layers.L.mlp.up_proj, ReLU or GELU) -> 2^N logits (lm_head).

    methods:
      pretrain   cross-entropy from random initialisation (or --base): makes a base
      sft        cross-entropy on the correct answers, from --base
      rl         REINFORCE with group-normalised advantages A = (r - mean)/(std + 1e-4)
                 over --group samples per prompt (GRPO without clipping), plus
                 --kl BETA times the exact KL to the base policy, from --base

    task and model:
      --bits N               difficulty: answers have 2^N classes (default 5; 1..12)
      --hidden LIST          hidden widths, at least two (default 256,256)
      --activation relu|gelu hidden nonlinearity (default relu)
      --base CHECKPOINT      starting weights (required for sft and rl); the shapes
                             give the architecture, which --bits/--hidden must match

    optimisation:
      --steps N              optimizer steps (default pretrain 2000, sft and rl 300)
      --batch N              prompts per step (default 128)
      --group G              rl: sampled answers per prompt (default 8)
      --kl BETA              rl: weight of the KL penalty to the base (default 0)
      --lr LR                learning rate (default pretrain 1e-3)
      --lr-relative R        learning rate = R x RMS of the starting weight matrices
                             (default sft 5e-4, rl 5e-5: 1e-5 and 1e-6 at the weight
                             RMS 0.02 of large language models); give --lr or this
      --warmup N             linear warm-up over N steps (default 0)
      --adam B1,B2,EPS       AdamW betas and epsilon (default 0.9,0.999,1e-8)
      --weight-decay W       decoupled weight decay (default 0.01)
      --clip NORM            clip gradients to this global norm (default 1; 0 = off)

    storage in the loop (the rounding functions and keys of 'preclab replay'):
      --storage POLICY       fp32, master (fp32 master, forward on the rounded copy),
                             pure (weights stored in --dtype, each update rounded in),
                             stochastic (pure with stochastic rounding keyed by --seed),
                             kahan (pure with a compensation buffer) (default fp32)
      --dtype FORMAT         storage format (default bf16; any of 'preclab formats')
      --rounding MODE        rounding of the pure policy (default nearest-even)
      --saturate             clamp overflow to the largest finite value
      --flush-subnormals     flush subnormal results to zero

    recording and output:
      -o, --output DIR       output directory (required; created when missing)
      --record-tensors REGEX record only tensors whose names match (default all)
      --every N              record every N-th step (default 1; the last always)
      --no-stream            do not write updates.bin
      --compare-replay       also train the same run in fp32, replay its stream under
                             --storage/--dtype and report closed loop against open
                             loop: DIR/closed, DIR/fp32, DIR/compare-replay.{txt,json}
      --eval-every N         greedy accuracy on the evaluation set every N steps
                             (default 10; 0: only at the start and the end)
      --seed S               seed of initialisation, prompts, samples and stochastic
                             rounding (default 0)
      --threads N            worker threads for rounding (results never depend on it)
      --quiet                no progress line and no table
      --progress auto|plain|none
                             progress on stderr: a redrawn line when stderr is a
                             terminal (auto, the default), a plain line per run
                             (plain), or nothing (none)
      --force                replace existing output files

    fp32 and master runs record the fp32 master trajectory; pure, stochastic and kahan
    runs record the intended fp32 updates (before rounding into storage), so that a
    replay of their stream under their own policy re-creates the stored weights.
    The same arguments give the same bytes, whatever --threads. updates.bin takes
    (recorded steps + 2) x (recorded parameters) x 4 bytes; models are limited to 2^26
    parameters.
    Exit status: 0 success, 1 bad data (unreadable checkpoint), 2 bad usage.
    """
    static let options: [OptionSpec] = [
        .value("--method"), .value("--output", short: "-o"), .value("--base"), .value("--bits"),
        .value("--hidden"), .value("--activation"), .value("--steps"), .value("--batch"), .value("--group"),
        .value("--kl"), .value("--lr"), .value("--lr-relative"), .value("--warmup"), .value("--adam"),
        .value("--weight-decay"), .value("--clip"), .value("--storage"), .value("--dtype"), .value("--rounding"),
        .flag("--saturate"), .flag("--flush-subnormals"), .value("--record-tensors"), .value("--every"),
        .flag("--no-stream"), .flag("--compare-replay"), .value("--eval-every"), .value("--seed"),
        .value("--threads"), .flag("--quiet"), .flag("--force"), ProgressReporter.spec,
    ]

    /// Largest model accepted (weights, Adam moments, gradients and copies are all in memory).
    static let maximumParameters = 1 << 26

    static func run(_ arguments: ParsedArguments) throws {
        _ = try arguments.requirePositionals(0, names: "no positional arguments")
        guard let methodText = arguments.value("--method") else {
            throw UsageError("--method pretrain|sft|rl is required (see 'preclab help train')")
        }
        guard let method = TrainingMethod(rawValue: methodText) else {
            throw UsageError("unknown method '\(methodText)' (expected pretrain, sft or rl)")
        }
        guard let output = arguments.value("--output") else {
            throw UsageError("-o DIR is required (see 'preclab help train')")
        }

        var activation: Activation? = nil
        if let text = arguments.value("--activation") {
            guard let parsed = Activation(rawValue: text) else {
                throw UsageError("unknown activation '\(text)' (expected relu or gelu)")
            }
            activation = parsed
        }
        let bitsOption: Int? = try arguments.number("--bits", .within(1...12))
        var hiddenOption: [Int]? = nil
        if let text = arguments.value("--hidden") {
            let widths = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
            guard widths.count >= 2, widths.allSatisfy({ ($0 ?? 0) >= 1 && ($0 ?? 0) <= 65536 }) else {
                throw UsageError("invalid value '\(text)' for --hidden (expected at least two widths, e.g. 256,256)")
            }
            hiddenOption = widths.map { $0! }
        }

        // Starting weights and architecture.
        let architecture: MLPArchitecture
        let initialWeights: [[Float]]
        var inputs: [String] = []
        if let basePath = arguments.value("--base") {
            let base = try BaseCheckpoint.load(basePath, activation: activation)
            architecture = base.architecture
            initialWeights = base.weights
            inputs = [basePath]
            if let bitsOption, architecture.inputs != 2 * bitsOption {
                throw UsageError("--bits \(bitsOption) does not match \(basePath) (\(architecture.inputs / 2) bits)")
            }
            if let hiddenOption, hiddenOption != architecture.hidden {
                throw UsageError("--hidden does not match \(basePath) (hidden widths "
                                         + architecture.hidden.map(String.init).joined(separator: ",") + ")")
            }
            guard architecture.inputs % 2 == 0, (1...12).contains(architecture.inputs / 2),
                  architecture.outputs == 1 << (architecture.inputs / 2) else {
                throw PrecLabError.badData("\(basePath): \(architecture.inputs) inputs and \(architecture.outputs) "
                                           + "outputs do not fit the task (2N inputs, 2^N outputs)")
            }
        } else {
            guard method == .pretrain else {
                throw UsageError("--method \(method.rawValue) starts from a base: give --base CHECKPOINT "
                                         + "(e.g. the final.safetensors of a pretrain run)")
            }
            let bits = bitsOption ?? 5
            architecture = MLPArchitecture(inputs: 2 * bits, hidden: hiddenOption ?? [256, 256], outputs: 1 << bits,
                                           activation: activation ?? .relu)
            initialWeights = architecture.initialParameters(seed: try arguments.number("--seed", .seed, default: 0))
        }
        guard architecture.parameterCount <= maximumParameters else {
            throw UsageError("\(architecture.parameterCount) parameters, above the limit of \(maximumParameters) "
                                     + "(the loop holds about ten fp32 copies of the weights)")
        }
        let task = ModularAdditionTask(bits: architecture.inputs / 2)

        var configuration = TrainingConfiguration()
        configuration.method = method
        configuration.steps = try arguments.number("--steps", .positive, default: method == .pretrain ? 2000 : 300)
        configuration.batchSize = try arguments.number("--batch", .positive, default: 128)
        configuration.groupSize = try arguments.number("--group", .atLeast(2), default: 8)
        configuration.klWeight = try arguments.number("--kl", .nonNegativeFinite, default: 0)
        if method != .rl {
            for option in ["--group", "--kl"] where arguments.value(option) != nil {
                throw UsageError("\(option) applies to --method rl only")
            }
        }
        let lrText = arguments.value("--lr"), relativeText = arguments.value("--lr-relative")
        if lrText != nil && relativeText != nil {
            throw UsageError("give --lr or --lr-relative, not both")
        }
        let weightScale = MLPArchitecture.matrixRMS(initialWeights, architecture.parameters)
        if lrText != nil {
            configuration.learningRate = try arguments.number("--lr", .nonNegativeFinite, default: 0)
        } else if relativeText != nil || method != .pretrain {
            let relative = try arguments.number("--lr-relative", .nonNegativeFinite, default: method == .sft ? 5e-4 : 5e-5)
            configuration.learningRate = relative * weightScale
        } else {
            configuration.learningRate = 1e-3
        }
        configuration.warmupSteps = try arguments.number("--warmup", .nonNegative, default: 0)
        if let text = arguments.value("--adam") {
            let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0) }
            guard parts.count == 3, let b1 = parts[0], let b2 = parts[1], let eps = parts[2],
                  (0..<1).contains(b1), (0..<1).contains(b2), eps > 0, eps.isFinite else {
                throw UsageError("invalid value '\(text)' for --adam (expected B1,B2,EPS, e.g. 0.9,0.999,1e-8)")
            }
            (configuration.beta1, configuration.beta2, configuration.epsilon) = (b1, b2, eps)
        }
        configuration.weightDecay = try arguments.number("--weight-decay", .nonNegativeFinite, default: 0.01)
        let clip = try arguments.number("--clip", .nonNegativeFinite, default: 1.0)
        configuration.clipNorm = clip > 0 ? clip : nil
        if let text = arguments.value("--storage") {
            guard let policy = ReplayPolicy(rawValue: text) else {
                throw UsageError("unknown storage policy '\(text)' (expected fp32, master, pure, stochastic or kahan)")
            }
            configuration.storage = policy
        }
        configuration.format = try FloatFormat.named(arguments.value("--dtype") ?? "bf16")
        if let mode = arguments.value("--rounding") { configuration.rounding.mode = try RoundingMode.named(mode) }
        configuration.rounding.saturate = arguments.flag("--saturate")
        configuration.rounding.flushSubnormals = arguments.flag("--flush-subnormals")
        configuration.seed = try arguments.number("--seed", .seed, default: 0)
        configuration.evaluateEvery = try arguments.number("--eval-every", .nonNegative, default: 10)
        configuration.threads = try arguments.number("--threads", .positive, default: ParallelChunks.threadCount)

        var outputOptions = TrainingOutputOptions(directory: output)
        outputOptions.recordStream = !arguments.flag("--no-stream")
        outputOptions.recordPattern = arguments.value("--record-tensors")
        outputOptions.recordEvery = try arguments.number("--every", .positive, default: 1)
        outputOptions.force = arguments.flag("--force")
        outputOptions.inputs = inputs
        _ = try TrainingRun.selectedTensors(architecture.parameters.map(\.name), pattern: outputOptions.recordPattern)
        let quiet = arguments.flag("--quiet")
        let progress = try ProgressReporter(command: name, arguments: arguments)
        let compare = arguments.flag("--compare-replay")
        if compare {
            guard configuration.storage != .fp32 else {
                throw UsageError("--compare-replay compares a stored policy with its open-loop replay: "
                                         + "give --storage master, pure, stochastic or kahan")
            }
            guard outputOptions.recordStream else {
                throw UsageError("--compare-replay needs the streams: drop --no-stream")
            }
        }

        func train(_ configuration: TrainingConfiguration, into directory: String, label: String) throws -> TrainingSummary {
            var options = outputOptions
            options.directory = directory
            progress.begin("step" + label, work: [])
            defer { progress.end() }
            return try TrainingRun.run(
                configuration: configuration, architecture: architecture, task: task, initialWeights: initialWeights,
                output: options, metadata: [("lr_relative_to_weight_rms", "\(configuration.learningRate / weightScale)")]
            ) { log in
                var note = "loss " + NumberStyle.general(significant: 4).format(log.loss)
                    + "  reward " + NumberStyle.fixed(decimals: 3).format(log.reward)
                if let accuracy = log.evaluationAccuracy {
                    note += "  eval " + NumberStyle.fixed(decimals: 3).format(accuracy)
                }
                progress.update(done: log.step, total: configuration.steps, note: note)
            }
        }

        if !compare {
            let summary = try train(configuration, into: output, label: "")
            if !quiet { Console.out(summaryTable(summary, weightScale: weightScale, directory: output).render()) }
            return
        }
        let directory = try ReportDirectory(path: output, force: outputOptions.force, inputs: inputs)
        let closedDirectory = directory.filePath("closed"), fp32Directory = directory.filePath("fp32")
        let closed = try train(configuration, into: closedDirectory, label: " (closed loop)")
        var reference = configuration
        reference.storage = .fp32
        let fp32 = try train(reference, into: fp32Directory, label: " (fp32 reference)")
        let comparison = try ClosedVsOpenLoop.measure(
            closed: closed, closedStream: closedDirectory + "/updates.bin", fp32: fp32,
            fp32Stream: fp32Directory + "/updates.bin", task: task)
        let table = comparison.table()
        try directory.write([("compare-replay.txt", table), ("compare-replay.json", comparison.json())])
        if !quiet {
            Console.out(summaryTable(closed, weightScale: weightScale, directory: closedDirectory).render())
            Console.out("")
            Console.out(table.render())
        }
    }

    static func summaryTable(_ summary: TrainingSummary, weightScale: Double, directory: String) -> TextTable {
        let configuration = summary.configuration
        var table = TextTable(
            title: "preclab train: \(configuration.method.rawValue), \(configuration.steps) steps, storage "
                + "\(configuration.storage.rawValue)" + (configuration.storage == .fp32 ? "" : " \(configuration.format.name)"),
            columns: [.text("measure"), .text("value")])
        let general = NumberStyle.general(significant: 4), fixed = NumberStyle.fixed(decimals: 3)
        let percent = NumberStyle.percent(decimals: 2)
        table.addRow(["model", .text("\(summary.architecture.inputs) -> "
            + summary.architecture.hidden.map(String.init).joined(separator: " -> ")
            + " -> \(summary.architecture.outputs) (\(summary.architecture.activation.rawValue)), "
            + "\(NumberFormat.count(summary.parameters)) parameters")])
        table.addRow(["learning rate", .text(general.format(configuration.learningRate) + " ("
            + general.format(configuration.learningRate / weightScale) + " x weight RMS "
            + general.format(weightScale) + ")")])
        table.addRow(["eval accuracy", .text(fixed.format(summary.initialAccuracy) + " -> " + fixed.format(summary.finalAccuracy))])
        table.addRow(["mean reward, last 10% of steps", .text(fixed.format(TrainingReport.tailMean(summary.logs.map(\.reward))))])
        if configuration.method != .pretrain {
            table.addRow(["KL to base at the end", .text(general.format(summary.logs.last?.kl ?? 0))])
        }
        table.addRow(["weights changed (intended, fp32)", .text(percent.format(summary.intendedChangedFraction))])
        table.addRow(["weights visibly changed (stored)", .text(percent.format(summary.visibleFraction))])
        if configuration.storage != .fp32 {
            table.addRow(["step updates that vanished", .text(percent.format(summary.vanishedFraction))])
        }
        table.addFootnote("wrote \(summary.files.count) files to \(directory) (checkpoints, updates.bin, log.csv, "
                          + "summary.json, SVG curves)")
        return table
    }
}
