import PrecLabAnalysis
import PrecLabFiles
import PrecLabSupport
import PrecLabSynth

/// `preclab synth -o FILE ...`: writes a synthetic update stream (BASE, STEPs, FINL)
/// from simulated AdamW steps, as a built-in source of data for replays and sweeps.
enum SynthCommand: Command {
    static let name = "synth"
    static let summary = "write a synthetic update stream (simulated AdamW; signal placement, snr, rotation knobs)"
    static let help = """
    usage: preclab synth -o FILE --shape RxC[,RxC...] --steps N --lr LR (--profile P | --placement X) [knobs]
           preclab synth -o FILE --base CHECKPOINT [--tensors REGEX] --steps N --lr LR ...

    Writes an update stream v1 file: the base weights W0 (BASE), one STEP record per
    simulated AdamW step with the fp32 change of the fp32 master weights, and the final
    master weights (FINL). The gradient of every matrix is G_t = a_s*S + a_n*N_t: S a
    fixed rank-r signal placed against the top-k singular vectors of the STORED base
    (after rounding), N_t fresh Gaussian noise. Each knob changes one thing:
      --placement off|in|random  S outside the top-k subspaces, inside them, or random
      --snr X                    a_s / a_n (0: no signal)
      --rotation R               share of ||S||^2 in the off-diagonal blocks (0..1),
                                 the part that rotates the top-k subspaces
      --row-spread, --col-spread log-normal spread of the noise's row/column scales
      --base-tail T              log-normal spread of W0's row/column scales
    The profiles are presets over these knobs (explicit knobs override them):
      rl     placement off, snr 0.1, noise RMS 1e-3, rotation 0
      sft    placement in,  snr 2,   noise RMS 5e-4, rotation 0
      noise  snr 0 (no signal), noise RMS 1e-3
    This is a model with stated parameters, not a claim about real training; see
    docs/synth-model.md for the equations.

    options:
      -o, --output FILE        the stream to write (required)
      --shape LIST             matrix shapes, e.g. 1024x1024,1024x4096 (generated base)
      --base CHECKPOINT        take W0 from the 2-D float tensors of a safetensors file,
                               index or directory instead of generating it
      --tensors REGEX          with --base: only tensors whose names match
      --steps N                optimizer steps, 1 to 10000 (required)
      --lr LR                  constant learning rate (required)
      --profile P              preset rl, sft or noise (this or --placement is required)
      --placement X            off, in or random (default: the preset's)
      --snr X                  signal-to-noise a_s/a_n (default: the preset's, else 1)
      --noise-rms A            noise amplitude a_n (default: the preset's, else 1e-3)
      --rotation R             off-diagonal share of the signal, 0..1 (default 0)
      --row-spread S           log-sd of the noise's row scales, 0..4 (default 0)
      --col-spread S           log-sd of the noise's column scales, 0..4 (default 0)
      --k K                    principal rank the signal is placed against; use the same
                               k for the spectral metrics (default min(16, min(m,n)/2))
      --signal-rank R          rank of each block of S (default min(8, block limit))
      --seed S                 seed of every random draw (default 0)
      --adam B1,B2,EPS         AdamW betas and epsilon (default 0.9,0.999,1e-8)
      --weight-decay W         decoupled weight decay (default 0.01)
      --spectrum-exponent B    generated base: sigma_i ~ (i+1)^-B (default 0.6)
      --entry-rms R            generated base: RMS of the entries (default 0.02)
      --base-rounding bf16|f32 generated base: round W0 to bf16 values, as a bf16
                               checkpoint loaded into fp32 master weights (default bf16)
      --base-tail T            generated base: log-sd of row/column scales, 0..4 (default 0)
      --threads N              worker threads (the bytes never depend on it)
      --progress MODE          auto (a line redrawn on a terminal, nothing otherwise),
                               plain (a line per stage) or none
      --quiet                  no progress line
      --force                  replace an existing output file

    The same arguments give the same bytes. The stream needs
    (steps + 2) x (elements of all matrices) x 4 bytes plus headers, and the run about
    24 bytes of memory per weight plus 32 per weight of the largest matrix; both are
    checked before anything is written.
    Exit status: 0 success, 1 bad data (unreadable checkpoint, or the stream does not
    fit the free disk or the memory), 2 bad usage.
    """
    static let options: [OptionSpec] = [
        .value("--output", short: "-o"), .value("--shape"), .value("--base"), .value("--tensors"),
        .value("--steps"), .value("--lr"), .value("--profile"), .value("--seed"), .value("--adam"),
        .value("--weight-decay"), .value("--spectrum-exponent"), .value("--entry-rms"),
        .value("--base-rounding"), .value("--base-tail"), .value("--placement"), .value("--snr"),
        .value("--rotation"), .value("--row-spread"), .value("--col-spread"), .value("--k"),
        .value("--signal-rank"), .value("--noise-rms"), .value("--threads"), .flag("--quiet"),
        .flag("--force"), ProgressReporter.spec,
    ]

    /// Element count above which a run is refused: the simulation holds five fp32
    /// buffers per element.
    static let maximumElements = 1 << 28

    static func run(_ arguments: ParsedArguments) throws {
        _ = try arguments.requirePositionals(0, names: "no positional arguments")
        guard let output = arguments.value("--output") else {
            throw UsageError("-o FILE is required (see 'preclab help synth')")
        }
        guard let steps = try arguments.number("--steps", .within(1...SynthConfiguration.maximumSteps)) else {
            throw UsageError("--steps N is required")
        }
        guard let lr = try arguments.number("--lr", .nonNegativeFinite) else {
            throw UsageError("--lr LR is required")
        }
        let profile = try arguments.choice("--profile", SynthProfile.self)
        let placement = try arguments.choice("--placement", SignalPlacement.self)
        guard profile != nil || placement != nil else {
            throw UsageError("give --profile rl|sft|noise or --placement off|in|random (see 'preclab help synth')")
        }
        let seed = try arguments.number("--seed", .seed, default: 0)
        var adam = AdamParameters()
        if let text = arguments.value("--adam") {
            let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0) }
            guard parts.count == 3, let b1 = parts[0], let b2 = parts[1], let eps = parts[2] else {
                throw UsageError("invalid value '\(text)' for --adam (expected B1,B2,EPS, e.g. 0.9,0.999,1e-8)")
            }
            adam.beta1 = b1; adam.beta2 = b2; adam.epsilon = eps
        }
        adam.weightDecay = try arguments.number("--weight-decay", .any, default: adam.weightDecay)
        var spectrum = BaseSpectrum()
        spectrum.exponent = try arguments.number("--spectrum-exponent", .any, default: spectrum.exponent)
        spectrum.entryRMS = try arguments.number("--entry-rms", .any, default: spectrum.entryRMS)
        spectrum.tail = try arguments.number("--base-tail", .any, default: spectrum.tail)
        switch arguments.value("--base-rounding") ?? "bf16" {
        case "bf16": spectrum.roundToBFloat16 = true
        case "f32": spectrum.roundToBFloat16 = false
        case let other:
            throw UsageError("invalid value '\(other)' for --base-rounding (expected bf16 or f32)")
        }
        // The preset first, then every knob given explicitly.
        var gradient = profile?.gradient ?? GradientModel(placement: placement!, snr: 1)
        if let placement { gradient.placement = placement }
        gradient.snr = try arguments.number("--snr", .any, default: gradient.snr)
        gradient.noiseRMS = try arguments.number("--noise-rms", .any, default: gradient.noiseRMS)
        gradient.rotation = try arguments.number("--rotation", .any, default: gradient.rotation)
        gradient.rowSpread = try arguments.number("--row-spread", .any, default: gradient.rowSpread)
        gradient.columnSpread = try arguments.number("--col-spread", .any, default: gradient.columnSpread)
        gradient.principalRank = try arguments.number("--k", .positive)
        gradient.signalRank = try arguments.number("--signal-rank", .positive)
        let threads = try arguments.number("--threads", .positive, default: ParallelChunks.threadCount)
        let configuration = SynthConfiguration(steps: steps, learningRate: lr, profile: profile, seed: seed,
                                               adam: adam, gradient: gradient, spectrum: spectrum,
                                               threads: threads)

        var inputs: [String] = []
        var extraMetadata: [(key: String, value: String)] = []
        let tensors: [SynthTensorSource]
        if let basePath = arguments.value("--base") {
            guard arguments.value("--shape") == nil else {
                throw UsageError("give either --shape or --base, not both")
            }
            let selection = try TensorSelectionOption.parse(arguments)
            let include: ((String) -> Bool)? = selection.pattern == nil ? nil : { selection.includes($0) }
            let checkpoint = try Checkpoint.open(basePath)
            tensors = try SynthCheckpointBase.tensors(of: checkpoint, include: include)
            inputs = checkpoint.filePaths
            extraMetadata.append(("base_checkpoint", basePath))
        } else {
            guard arguments.value("--tensors") == nil else {
                throw UsageError("--tensors selects tensors of --base; it needs --base")
            }
            guard let shapeText = arguments.value("--shape") else {
                throw UsageError("give --shape RxC[,RxC...] or --base CHECKPOINT")
            }
            tensors = try parseShapes(shapeText).enumerated().map { index, shape in
                .generated(name: SynthTensorSource.defaultName(index: index), rows: shape.rows, columns: shape.columns)
            }
        }
        let elements = tensors.reduce(0) { $0 + $1.rows * $1.columns }
        guard elements <= maximumElements else {
            throw UsageError("\(elements) elements in all matrices, above the limit of \(maximumElements)")
        }

        let generator = try SyntheticStreamGenerator(configuration: configuration, tensors: tensors)
        try SynthResources.requireFits(steps: steps, shapes: tensors.map { ($0.rows, $0.columns) }, output: output)
        var sink = try UpdateStreamFileSink(path: output, force: arguments.flag("--force"), inputs: inputs)
        let progress = try ProgressReporter(command: name, arguments: arguments)
        progress.begin("steps", work: [])
        try generator.generate(into: &sink, extraMetadata: extraMetadata) { step in
            progress.update(done: step, total: steps)
        }
        try sink.close()
        progress.end()
        let bytes = (steps + 2) * elements * 4
        let knobs = "placement \(gradient.placement.rawValue), snr \(compactDecimal(gradient.snr)), rotation \(compactDecimal(gradient.rotation))"
        Console.out("wrote \(output): \(profile.map { "\($0.rawValue) preset, " } ?? "")\(knobs), \(tensors.count) \(tensors.count == 1 ? "matrix" : "matrices") (\(elements) weights), \(steps) steps, lr \(lr), seed \(seed), about \(bytes / 1_000_000) MB")
    }

    /// "1024x1024,896x4864" as (rows, columns) pairs.
    static func parseShapes(_ text: String) throws -> [(rows: Int, columns: Int)] {
        try text.split(separator: ",", omittingEmptySubsequences: false).map { item in
            let sides = item.lowercased().split(separator: "x", omittingEmptySubsequences: false)
            guard sides.count == 2, let rows = Int(sides[0]), let columns = Int(sides[1]),
                  rows >= 1, columns >= 1 else {
                throw UsageError("invalid shape '\(item)' in --shape (expected ROWSxCOLS, e.g. 1024x1024)")
            }
            guard rows <= maximumElements, columns <= maximumElements, rows * columns <= maximumElements else {
                throw UsageError("shape '\(item)' is too large (at most \(maximumElements) elements)")
            }
            return (rows, columns)
        }
    }
}
