import PrecLabSupport

/// One tensor of a synthetic stream: a 2-D matrix whose base is either generated
/// (power-law spectrum) or given (for example read from a checkpoint).
public struct SynthTensorSource: Sendable {
    public var name: String
    public var rows: Int
    public var columns: Int
    /// The dtype written to the stream header (the model's storage dtype).
    public var dtype: String?
    /// The base weights, row-major; nil to generate them.
    public var base: [Float]?

    /// A tensor whose base the generator draws.
    public static func generated(name: String, rows: Int, columns: Int,
                                 dtype: String? = "BF16") -> SynthTensorSource {
        SynthTensorSource(name: name, rows: rows, columns: columns, dtype: dtype, base: nil)
    }

    /// A tensor with given base weights (row-major, rows × columns values).
    public static func given(name: String, rows: Int, columns: Int, weights: [Float],
                             dtype: String?) -> SynthTensorSource {
        SynthTensorSource(name: name, rows: rows, columns: columns, dtype: dtype, base: weights)
    }

    /// The name generated tensors get: `synth.<index>.weight`.
    public static func defaultName(index: Int) -> String { "synth.\(index).weight" }
}

/// Everything that determines a synthetic stream besides its tensors.
public struct SynthConfiguration: Sendable {
    public var steps: Int
    public var learningRate: Double
    public var seed: UInt64
    public var adam: AdamParameters
    /// The preset the knobs started from (recorded in the metadata), nil when none.
    public var profile: SynthProfile?
    public var gradient: GradientModel
    public var spectrum: BaseSpectrum
    /// Worker threads for the AdamW loop; the output never depends on it.
    public var threads: Int

    /// `gradient` nil takes the profile's preset; a profile is then required.
    public init(steps: Int, learningRate: Double, profile: SynthProfile?, seed: UInt64 = 0,
                adam: AdamParameters = AdamParameters(), gradient: GradientModel? = nil,
                spectrum: BaseSpectrum = BaseSpectrum(), threads: Int = ParallelChunks.threadCount) {
        precondition(gradient != nil || profile != nil, "give a profile or a gradient model")
        self.steps = steps
        self.learningRate = learningRate
        self.seed = seed
        self.adam = adam
        self.profile = profile
        self.gradient = gradient ?? profile!.gradient
        self.spectrum = spectrum
        self.threads = threads
    }

    /// The most steps one stream may hold (the same bound as sweep files).
    public static let maximumSteps = 10_000

    /// Rejects values the model is not defined for, as invalid arguments naming the setting.
    public func validate() throws {
        func require(_ condition: Bool, _ message: String) throws {
            if !condition { throw PrecLabError.invalidArgument(message) }
        }
        try require(steps >= 1 && steps <= SynthConfiguration.maximumSteps,
                    "the step count must lie in [1, \(SynthConfiguration.maximumSteps)], got \(steps)")
        // Upper bounds keep every weight and update finite in fp32 (AdamW moves a weight
        // by about lr per step); beyond them the stream would be NaN/Inf noise.
        try require(learningRate.isFinite && learningRate >= 0 && learningRate <= 1,
                    "the learning rate must lie in [0, 1], got \(learningRate)")
        try require((0 ..< 1).contains(adam.beta1) && (0 ..< 1).contains(adam.beta2),
                    "Adam betas must lie in [0, 1), got \(adam.beta1), \(adam.beta2)")
        try require(adam.epsilon.isFinite && adam.epsilon > 0, "Adam epsilon must be finite and > 0, got \(adam.epsilon)")
        try require(adam.weightDecay.isFinite && adam.weightDecay >= 0 && adam.weightDecay <= 1,
                    "the weight decay must lie in [0, 1], got \(adam.weightDecay)")
        try require(spectrum.exponent.isFinite && spectrum.exponent >= 0 && spectrum.exponent <= 10,
                    "the spectrum exponent must lie in [0, 10], got \(spectrum.exponent)")
        try require(spectrum.entryRMS.isFinite && spectrum.entryRMS > 0 && spectrum.entryRMS <= 1e6,
                    "the entry RMS must lie in (0, 1e6], got \(spectrum.entryRMS)")
        try require(spectrum.tail.isFinite && spectrum.tail >= 0 && spectrum.tail <= 4,
                    "the base tail must lie in [0, 4], got \(spectrum.tail)")
        try gradient.validateKnobs()
        try require(threads >= 1, "threads must be at least 1")
    }
}

/// Writes a synthetic update stream: BASE (W0), `steps` STEP records of simulated
/// AdamW updates on signal-plus-noise gradients, and FINL (the fp32 master after the
/// last step). The model is described in docs/synth-model.md.
///
/// Every random number is counter-based, keyed by (seed, tensor, purpose, step,
/// element), so the bytes depend on the seed and the inputs only: not on the thread
/// count, and not on the order chunks run in.
public struct SyntheticStreamGenerator: Sendable {
    public static let modelVersion = "2"

    public let configuration: SynthConfiguration
    public let tensors: [SynthTensorSource]

    public init(configuration: SynthConfiguration, tensors: [SynthTensorSource]) throws {
        try configuration.validate()
        guard !tensors.isEmpty else { throw PrecLabError.invalidArgument("no tensors to simulate") }
        var names = Set<String>()
        for tensor in tensors {
            guard !tensor.name.isEmpty else { throw PrecLabError.invalidArgument("a tensor name is empty") }
            guard names.insert(tensor.name).inserted else {
                throw PrecLabError.invalidArgument("tensor name '\(tensor.name)' appears twice")
            }
            try configuration.gradient.validate(rows: tensor.rows, columns: tensor.columns, name: tensor.name)
            if let base = tensor.base {
                guard base.count == tensor.rows * tensor.columns else {
                    throw PrecLabError.badData("tensor \(tensor.name): base holds \(base.count) values, expected \(tensor.rows)x\(tensor.columns)")
                }
                if let bad = base.firstIndex(where: { !$0.isFinite }) {
                    throw PrecLabError.badData("tensor \(tensor.name): base value \(bad) is \(base[bad]), expected a finite number")
                }
            }
        }
        self.configuration = configuration
        self.tensors = tensors
    }

    /// Checks a gradient model against one m × n tensor, as the initialiser does.
    public static func validate(gradient: GradientModel, rows: Int, columns: Int, name: String) throws {
        try gradient.validate(rows: rows, columns: columns, name: name)
    }

    /// The header metadata: generator, model parameters and shapes, as strings.
    public var metadata: [(key: String, value: String)] {
        let c = configuration
        let shapes = tensors.map { "\($0.rows)x\($0.columns)" }.joined(separator: ",")
        let ranks = tensors.map { "\(c.gradient.principalRank(rows: $0.rows, columns: $0.columns))" }
            .joined(separator: ",")
        let signalRanks = tensors.map { "\(c.gradient.signalRank(rows: $0.rows, columns: $0.columns))" }
            .joined(separator: ",")
        let generatedBase = tensors.allSatisfy { $0.base == nil }
        var pairs: [(key: String, value: String)] = [
            ("generator", "preclab synth \(precLabVersion)"),
            ("synth_model", SyntheticStreamGenerator.modelVersion),
            ("optimizer", "AdamW"),
            ("profile", c.profile?.rawValue ?? "none"),
            ("seed", "\(c.seed)"),
            ("steps", "\(c.steps)"),
            ("lr", "\(c.learningRate)"),
            ("adam_beta1", "\(c.adam.beta1)"),
            ("adam_beta2", "\(c.adam.beta2)"),
            ("adam_eps", "\(c.adam.epsilon)"),
            ("weight_decay", "\(c.adam.weightDecay)"),
            ("shapes", shapes),
            ("placement", c.gradient.placement.rawValue),
            ("snr", "\(c.gradient.snr)"),
            ("signal_rms", "\(c.gradient.signalRMS)"),
            ("noise_rms", "\(c.gradient.noiseRMS)"),
            ("rotation", "\(c.gradient.rotation)"),
            ("row_spread", "\(c.gradient.rowSpread)"),
            ("col_spread", "\(c.gradient.columnSpread)"),
            ("principal_k", ranks),
            ("signal_rank", c.gradient.hasSignal ? signalRanks : "none"),
            ("signal_placed_against", "stored base"),
        ]
        if generatedBase {
            pairs += [
                ("base", "generated"),
                ("spectrum_exponent", "\(c.spectrum.exponent)"),
                ("entry_rms", "\(c.spectrum.entryRMS)"),
                ("base_rounding", c.spectrum.roundToBFloat16 ? "bf16" : "f32"),
                ("base_tail", "\(c.spectrum.tail)"),
            ]
        } else {
            pairs.append(("base", "given"))
        }
        return pairs
    }

    /// Runs the simulation, sending every record to `sink`. `progress` is called after
    /// each step with the step number.
    public func generate<Sink: UpdateStreamSink>(into sink: inout Sink,
                                                 extraMetadata: [(key: String, value: String)] = [],
                                                 progress: ((Int) -> Void)? = nil) throws {
        let c = configuration
        let states = try SingleThreadedBLAS.run {
            try tensors.indices.map { index in try prepare(index: index) }
        }
        let infos = tensors.map { StreamTensorInfo(name: $0.name, shape: [$0.rows, $0.columns], dtype: $0.dtype) }
        // The payloads are pointers into the states' buffers: keep the states alive
        // until the sink has consumed the last record.
        try withExtendedLifetime(states) {
            try sink.begin(tensors: infos, metadata: metadata + extraMetadata)
            try sink.writeBase(step: 0, tensors: states.map { UnsafeBufferPointer($0.weights) })
            for t in 1 ... c.steps {
                let constants = AdamWStepConstants(adam: c.adam, learningRate: c.learningRate, step: t,
                                                   signalScale: c.gradient.signalRMS)
                for (index, state) in states.enumerated() {
                    let noise = CounterRandom(seed: c.seed, tensor: index, purpose: .gradientNoise, step: t)
                    AdamWKernel.step(state, constants: constants, noise: noise,
                                     noiseRMS: c.gradient.noiseRMS, threads: c.threads)
                }
                try sink.writeStep(UInt64(t), learningRate: c.learningRate,
                                   deltas: states.map { UnsafeBufferPointer($0.delta) })
                progress?(t)
            }
            try sink.writeFinal(step: UInt64(c.steps), tensors: states.map { UnsafeBufferPointer($0.weights) })
        }
    }

    /// The stored base weights and the fixed signal of tensor `index`. The signal is
    /// placed against the top-k singular vectors of the stored (rounded) base, the
    /// matrix every replay and spectral metric starts from.
    func prepareBaseAndSignal(index: Int) throws -> (base: [Float], signal: [Float]?) {
        let c = configuration
        let tensor = tensors[index]
        let k = c.gradient.principalRank(rows: tensor.rows, columns: tensor.columns)
        let weights = try tensor.base ?? SyntheticBase.generate(
            rows: tensor.rows, columns: tensor.columns, spectrum: c.spectrum, seed: c.seed, tensor: index)
        let principal: PrincipalSubspace
        if c.gradient.needsPrincipalSubspace {
            principal = try SyntheticBase.principalSubspace(
                of: weights, rows: tensor.rows, columns: tensor.columns, rank: k, name: tensor.name)
        } else {  // no signal, or a random one: the subspaces are never looked at
            principal = PrincipalSubspace(rows: tensor.rows, columns: tensor.columns, rank: k, left: [], right: [])
        }
        let signal = GradientSignal.make(
            model: c.gradient, principal: principal,
            signalRank: c.gradient.signalRank(rows: tensor.rows, columns: tensor.columns),
            seed: c.seed, tensor: index)
        return (weights, signal)
    }

    /// The optimizer state of one tensor: base, signal and the noise's scales.
    private func prepare(index: Int) throws -> AdamWTensorState {
        let (base, signal) = try prepareBaseAndSignal(index: index)
        return AdamWTensorState(base: base, signal: signal, noiseScale: noiseScale(index: index))
    }

    /// The per-element noise scale a_i·b_j (row-major) of tensor `index`, or nil when
    /// both spreads are 0 (every element alike).
    func noiseScale(index: Int) -> [Float]? {
        let g = configuration.gradient
        guard g.rowSpread > 0 || g.columnSpread > 0 else { return nil }
        let tensor = tensors[index]
        let seed = configuration.seed
        let rows = SyntheticBase.logNormalScales(
            count: tensor.rows, spread: g.rowSpread,
            random: CounterRandom(seed: seed, tensor: index, purpose: .noiseRowScale))
        let columns = SyntheticBase.logNormalScales(
            count: tensor.columns, spread: g.columnSpread,
            random: CounterRandom(seed: seed, tensor: index, purpose: .noiseColumnScale))
        var scale = [Float](repeating: 0, count: tensor.rows * tensor.columns)
        for i in 0 ..< tensor.rows {
            for j in 0 ..< tensor.columns { scale[i * tensor.columns + j] = Float(rows[i] * columns[j]) }
        }
        return scale
    }
}
