import PrecLabAnalysis
import PrecLabFiles
import PrecLabFormats
import PrecLabReplay
import PrecLabReports
import PrecLabSupport

/// Where and what a run writes.
public struct TrainingOutputOptions: Sendable {
    public var directory: String
    /// Record the update stream (`updates.bin`).
    public var recordStream = true
    /// Recorded tensors: names matching this regular expression (nil: all).
    public var recordPattern: String? = nil
    /// Record every N-th step (the last step always).
    public var recordEvery = 1
    public var force = false
    /// Files the run reads (never overwritten).
    public var inputs: [String] = []

    public init(directory: String) { self.directory = directory }
}

/// What a finished run measured.
public struct TrainingSummary: Sendable {
    public var configuration: TrainingConfiguration
    public var architecture: MLPArchitecture
    public var bits: Int
    public var logs: [StepLog]
    public var initialAccuracy: Double
    public var finalAccuracy: Double
    public var parameterNames: [String]
    public var parameterCounts: [Int]
    /// Per tensor: elements whose stored bits differ from the stored base at the end.
    public var visible: [Int]
    /// Per tensor: elements of base + Σ intended updates (fp32) that differ from the base.
    public var intendedChanged: [Int]
    /// Σ over steps of non-zero intended updates and of those that vanished.
    public var nonZeroUpdates: Int
    public var vanishedUpdates: Int
    /// The final weights as fp32 values (stored policies: the decoded stored weights;
    /// fp32 and master: the master).
    public var finalWeights: [[Float]]
    /// The final weights the forward pass sees (master: the rounded copy).
    public var finalForwardWeights: [[Float]]
    public var files: [String]
    /// RMS of the starting weight matrices (the scale `--lr-relative` multiplies).
    public var startWeightRMS: Double

    public var parameters: Int { parameterCounts.reduce(0, +) }
    public var visibleFraction: Double { Double(visible.reduce(0, +)) / Double(parameters) }
    public var intendedChangedFraction: Double { Double(intendedChanged.reduce(0, +)) / Double(parameters) }
    public var vanishedFraction: Double { nonZeroUpdates > 0 ? Double(vanishedUpdates) / Double(nonZeroUpdates) : 0 }
}

public enum TrainingRun {
    /// Trains and, with `output`, writes checkpoints, the stream, the CSV log, SVG
    /// curves and summary.json. `progress` is called after every step.
    public static func run(configuration: TrainingConfiguration, architecture: MLPArchitecture,
                           task: ModularAdditionTask, initialWeights: [[Float]],
                           output: TrainingOutputOptions?, metadata: [(key: String, value: String)] = [],
                           progress: ((StepLog) -> Void)? = nil) throws -> TrainingSummary {
        let specs = architecture.parameters
        let trainer = Trainer(configuration: configuration, architecture: architecture, task: task,
                              initialWeights: initialWeights)
        var files: [String] = []
        var recorder: UpdateRecorder? = nil
        var directory: ReportDirectory? = nil
        let runMetadata = metadata + describe(configuration, architecture, task)
        if let output {
            let outputDirectory = try ReportDirectory(path: output.directory, force: output.force, inputs: output.inputs)
            directory = outputDirectory
            // Every destination is checked before anything is written, so a refused
            // overwrite leaves no half-replaced run behind.
            let format = configuration.format.name
            var names = ["base.safetensors", "final.safetensors", "log.csv", "summary.json", "reward.svg", "loss.svg",
                         "updates.svg", "base.\(format).safetensors", "final.\(format).safetensors"]
            if output.recordStream { names.append("updates.bin") }
            for name in names {
                try AtomicFileWriter.checkDestination(outputDirectory.filePath(name), force: output.force,
                                                      inputs: output.inputs)
            }
            try writeCheckpoints(named: "base", weights: initialWeights, trainer: trainer, useStored: false,
                                 directory: outputDirectory, metadata: runMetadata, files: &files)
            if output.recordStream {
                let indices = try selectedTensors(specs.map(\.name), pattern: output.recordPattern)
                let path = outputDirectory.filePath("updates.bin")
                recorder = try UpdateRecorder(
                    path: path, names: specs.map(\.name), shapes: specs.map(\.shape), tensorIndices: indices,
                    base: initialWeights, policy: configuration.storage,
                    storedDType: configuration.storage == .fp32 ? "F32" : configuration.format.safetensorsName,
                    every: output.recordEvery, totalSteps: configuration.steps,
                    metadata: runMetadata + [("recorded", configuration.storage == .fp32 || configuration.storage == .master
                        ? "fp32 master trajectory" : "intended fp32 updates before rounding into storage")],
                    force: output.force, inputs: output.inputs)
                files.append(path)
            }
        }

        let initialAccuracy = trainer.evaluate()
        var logs: [StepLog] = []
        var intended = initialWeights
        var nonZero = 0, vanished = 0
        for _ in 0..<configuration.steps {
            let (log, effect) = trainer.step()
            for tensor in intended.indices {
                intended[tensor].withUnsafeMutableBufferPointer { values in
                    for i in values.indices { values[i] += effect.updates[tensor][i] }
                }
            }
            nonZero += effect.nonZeroUpdates
            vanished += effect.vanished
            try recorder?.record(step: log.step, learningRate: log.learningRate, storage: trainer.storage,
                                 updates: effect.updates)
            logs.append(log)
            progress?(log)
        }
        try recorder?.finish()
        let finalAccuracy = logs.last?.evaluationAccuracy ?? initialAccuracy
        let intendedChanged = intended.indices.map { tensor in
            zip(intended[tensor], initialWeights[tensor]).filter { $0.bitPattern != $1.bitPattern }.count
        }
        var summary = TrainingSummary(
            configuration: configuration, architecture: architecture, bits: task.bits, logs: logs,
            initialAccuracy: initialAccuracy, finalAccuracy: finalAccuracy, parameterNames: specs.map(\.name),
            parameterCounts: specs.map(\.count), visible: trainer.storage.visibleCounts(),
            intendedChanged: intendedChanged, nonZeroUpdates: nonZero, vanishedUpdates: vanished,
            finalWeights: trainer.storage.finalFloat32, finalForwardWeights: trainer.storage.forwardWeights,
            files: files,
            startWeightRMS: MLPArchitecture.matrixRMS(initialWeights, specs))
        if let directory {
            try writeCheckpoints(named: "final", weights: trainer.storage.finalFloat32, trainer: trainer,
                                 useStored: true, directory: directory, metadata: runMetadata, files: &summary.files)
            summary.files += try TrainingReport.write(summary, to: directory)
        }
        return summary
    }

    /// Indices of the tensors whose names match `pattern` (all when nil).
    public static func selectedTensors(_ names: [String], pattern: String?) throws -> [Int] {
        let selection = try TensorSelection(optionalPattern: pattern)
        let indices = names.indices.filter { selection.includes(names[$0]) }
        guard !indices.isEmpty else {
            throw PrecLabError.invalidArgument("the recording pattern '\(pattern ?? "")' matches no tensor (have: "
                                               + names.joined(separator: ", ") + ")")
        }
        return indices
    }

    static func describe(_ configuration: TrainingConfiguration, _ architecture: MLPArchitecture,
                         _ task: ModularAdditionTask) -> [(key: String, value: String)] {
        [("producer", "preclab train"), ("method", configuration.method.rawValue),
         ("task", "modular-addition"), ("bits", "\(task.bits)"),
         ("hidden", architecture.hidden.map(String.init).joined(separator: ",")),
         ("activation", architecture.activation.rawValue), ("seed", "\(configuration.seed)"),
         ("storage", configuration.storage.rawValue), ("dtype", configuration.format.name),
         ("rounding", configuration.rounding.mode.rawValue), ("optimizer", "AdamW"),
         ("lr", "\(configuration.learningRate)"), ("steps", "\(configuration.steps)")]
    }

    /// `NAME.safetensors` (fp32 values) and `NAME.DTYPE.safetensors` (codes in the
    /// format: the nearest-even rounding of the base, or the run's stored codes),
    /// the second only when the format is not fp32 and safetensors has a byte-sized dtype for it.
    static func writeCheckpoints(named name: String, weights: [[Float]], trainer: Trainer, useStored: Bool,
                                 directory: ReportDirectory, metadata: [(key: String, value: String)],
                                 files: inout [String]) throws {
        let specs = trainer.architecture.parameters
        let path = directory.filePath("\(name).safetensors")
        let tensors = zip(specs, weights).map { spec, values in
            (spec: SafetensorsTensorSpec(name: spec.name, dtype: .f32, shape: spec.shape),
             bytes: values.withUnsafeBytes { Array($0) })
        }
        try SafetensorsWriter.write(to: path, tensors: tensors, metadata: metadata, force: directory.force,
                                    inputs: directory.inputs)
        files.append(path)
        let format = trainer.configuration.format
        guard format != .fp32, let dtypeName = format.safetensorsName, let dtype = TensorDType.named(dtypeName),
              dtype.byteWidth == format.storageBytes else { return }
        let codes: [[UInt8]]
        if useStored {
            codes = trainer.storage.storedCodes()
        } else {
            var nearest = trainer.configuration.rounding
            nearest.mode = .nearestEven
            codes = weights.map { WeightStorage.encode(format, $0, nearest, key: nil, threads: trainer.configuration.threads) }
        }
        let storedPath = directory.filePath("\(name).\(format.name).safetensors")
        try SafetensorsWriter.write(
            to: storedPath,
            tensors: zip(specs, codes).map { (spec: SafetensorsTensorSpec(name: $0.name, dtype: dtype, shape: $0.shape), bytes: $1) },
            metadata: metadata, force: directory.force, inputs: directory.inputs)
        files.append(storedPath)
    }
}
