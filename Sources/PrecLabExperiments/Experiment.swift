import Foundation
import PrecLabFormats
import PrecLabReplay
import PrecLabSupport
import PrecLabSynth

/// A declarative experiment (`experiments/NAME.json`): one synthetic stream recipe, a
/// grid of values that vary it (and the replay's storage format), and the outputs to
/// write. See docs/experiments.md for every key.
public struct Experiment: Sendable {
    /// The synthetic stream every grid point starts from: the preset (if any), then
    /// the knobs the file sets, then the grid point's values.
    struct StreamRecipe: Sendable, Equatable {
        var shapes: [(rows: Int, columns: Int)]
        var steps: Int
        var learningRate: Double
        var seed: UInt64 = 0
        /// The preset the knobs start from; nil starts from placement random, snr 1.
        var profile: SynthProfile?
        /// k of the signal's placement and of the spectral metrics (one value for both).
        var k: Int = 16
        // Knobs set explicitly; nil keeps the preset's (or the model's default) value.
        var placement: SignalPlacement?
        var snr: Double?
        var noiseRMS: Double?
        var rotation: Double?
        var rowSpread: Double?
        var columnSpread: Double?
        var signalRank: Int?
        var baseTail: Double?
        var spectrumExponent: Double?
        var entryRMS: Double?

        /// The gradient model of this recipe, knobs resolved.
        var gradient: GradientModel {
            var model = profile?.gradient ?? GradientModel(placement: .random, snr: 1)
            if let placement { model.placement = placement }
            if let snr { model.snr = snr }
            if let noiseRMS { model.noiseRMS = noiseRMS }
            if let rotation { model.rotation = rotation }
            if let rowSpread { model.rowSpread = rowSpread }
            if let columnSpread { model.columnSpread = columnSpread }
            model.principalRank = k
            model.signalRank = signalRank
            return model
        }

        var spectrum: BaseSpectrum {
            var spectrum = BaseSpectrum()
            if let baseTail { spectrum.tail = baseTail }
            if let spectrumExponent { spectrum.exponent = spectrumExponent }
            if let entryRMS { spectrum.entryRMS = entryRMS }
            return spectrum
        }

        func configuration(threads: Int) -> SynthConfiguration {
            SynthConfiguration(steps: steps, learningRate: learningRate, profile: profile, seed: seed,
                               gradient: gradient, spectrum: spectrum, threads: threads)
        }

        /// Equal recipes give the same stream bits (knobs that do not act, such as the
        /// placement of a zero signal, are ignored), so the runner synthesises them once.
        static func == (lhs: StreamRecipe, rhs: StreamRecipe) -> Bool {
            lhs.shapes.map { [$0.rows, $0.columns] } == rhs.shapes.map { [$0.rows, $0.columns] }
                && lhs.steps == rhs.steps && lhs.learningRate == rhs.learningRate && lhs.seed == rhs.seed
                && lhs.gradient.canonical == rhs.gradient.canonical && lhs.spectrum == rhs.spectrum
        }

        var elements: Int { shapes.reduce(0) { $0 + $1.rows * $1.columns } }
        var shapeText: String { shapes.map { "\($0.rows)x\($0.columns)" }.joined(separator: ",") }

        /// Sets one knob (a value already checked by the parser).
        mutating func set(_ knob: Knob, _ value: AxisValue) {
            switch (knob, value) {
            case (.profile, .text(let text)): profile = SynthProfile(rawValue: text)
            case (.placement, .text(let text)): placement = SignalPlacement(rawValue: text)
            case (.snr, .number(let x)): snr = x
            case (.noiseRMS, .number(let x)): noiseRMS = x
            case (.rotation, .number(let x)): rotation = x
            case (.rowSpread, .number(let x)): rowSpread = x
            case (.columnSpread, .number(let x)): columnSpread = x
            case (.k, .number(let x)): k = Int(x)
            case (.signalRank, .number(let x)): signalRank = Int(x)
            case (.baseTail, .number(let x)): baseTail = x
            case (.spectrumExponent, .number(let x)): spectrumExponent = x
            case (.entryRMS, .number(let x)): entryRMS = x
            case (.lr, .number(let x)): learningRate = x
            case (.steps, .number(let x)): steps = Int(x)
            case (.seed, .number(let x)): seed = UInt64(x)
            default: preconditionFailure("knob \(knob) set to \(value)")
            }
        }
    }

    /// A knob of the stream: a key of the "stream" object and a grid axis. The names
    /// are the synth options without their dashes (`--row-spread` is `row_spread`).
    enum Knob: String, CaseIterable, Sendable {
        case profile, placement, snr
        case noiseRMS = "noise_rms"
        case rotation
        case rowSpread = "row_spread"
        case columnSpread = "col_spread"
        case k
        case signalRank = "signal_rank"
        case baseTail = "base_tail"
        case spectrumExponent = "spectrum_exponent"
        case entryRMS = "entry_rms"
        case lr, steps, seed

        var isNumeric: Bool { self != .profile && self != .placement }
    }

    /// How each stream is replayed.
    struct ReplaySettings: Sendable {
        var format: FloatFormat
        var policies: [ReplayPolicy]
        var nullPermute: Bool
        var curveEvery: Int?
        var seed: UInt64
    }

    /// Options of the fp32-truth spectral comparison W0 -> W_T (k is the stream's).
    struct SpectralSettings: Sendable {
        var rank: Int
        var alpha: Double
    }

    /// An output an experiment asks for (each writes one CSV and one or more plots).
    enum Output: String, CaseIterable, Sendable {
        /// Sparsity per policy against the grid (line plot over a numeric axis, bars otherwise).
        case sparsity
        /// Visible fraction against step (the replay's per-step curve).
        case curve
        /// Fraction visible per |W0| octave, per policy and for the permuted null model.
        case magnitude
        /// NSS, principal angles and mask overlaps of the fp32 truth (needs "spectral").
        case spectral
    }

    /// A grid axis: a stream knob or the replay's storage format.
    enum Axis: Sendable, Equatable {
        case knob(Knob)
        case dtype

        init?(rawValue: String) {
            if rawValue == "dtype" { self = .dtype } else if let knob = Knob(rawValue: rawValue) { self = .knob(knob) } else { return nil }
        }

        var rawValue: String {
            switch self {
            case .knob(let knob): return knob.rawValue
            case .dtype: return "dtype"
            }
        }

        static var allNames: [String] { Knob.allCases.map(\.rawValue) + ["dtype"] }

        /// Numeric axes can be the x axis of a line plot.
        var isNumeric: Bool {
            if case .knob(let knob) = self { return knob.isNumeric }
            return false
        }
    }

    /// A value on a grid axis.
    enum AxisValue: Sendable, Equatable {
        case number(Double)
        case text(String)

        var text: String {
            switch self {
            case .number(let value): return compactDecimal(value)
            case .text(let value): return value
            }
        }

        var number: Double? {
            if case .number(let value) = self { return value }
            return nil
        }
    }

    /// One point of the grid: the stream to synthesise and the format to replay it in.
    struct GridPoint: Sendable {
        var index: Int
        var values: [(axis: Axis, value: AxisValue)]
        var stream: StreamRecipe
        var format: FloatFormat

        /// "lr=1e-06, dtype=bf16".
        var label: String {
            values.map { "\($0.axis.rawValue)=\($0.value.text)" }.joined(separator: ", ")
        }

        func value(_ axis: Axis) -> AxisValue? { values.first { $0.axis == axis }?.value }
    }

    public var name: String
    var question: String
    var stream: StreamRecipe
    var grid: [(axis: Axis, values: [AxisValue])]
    var replay: ReplaySettings
    var spectral: SpectralSettings?
    var outputs: [Output]

    /// Limits that keep an experiment a laboratory run, not a training job.
    static let maximumGridPoints = 64
    static let maximumSide = 4096
    static let maximumSteps = SynthConfiguration.maximumSteps
    /// Bytes of one stream on disk: (steps + 2) records of 4-byte weights.
    static let maximumStreamBytes = 2 << 30

    /// Every grid point, in row-major order of the axes as the file lists them.
    var points: [GridPoint] {
        var combinations: [[(axis: Axis, value: AxisValue)]] = [[]]
        for (axis, values) in grid {
            combinations = combinations.flatMap { prefix in values.map { prefix + [(axis, $0)] } }
        }
        return combinations.enumerated().map { index, values in
            var recipe = stream
            var format = replay.format
            for (axis, value) in values {
                switch (axis, value) {
                case (.knob(let knob), _): recipe.set(knob, value)
                case (.dtype, .text(let text)): format = (try? FloatFormat.named(text)) ?? format
                default: break
                }
            }
            return GridPoint(index: index, values: values, stream: recipe, format: format)
        }
    }
}
