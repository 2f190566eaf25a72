import Foundation
import PrecLabFormats
import PrecLabReplay
import PrecLabSupport
import PrecLabSynth

/// A declarative experiment (`experiments/NAME.json`): one synthetic stream recipe, a
/// grid of values that vary it (and the replay's storage format), and the outputs to
/// write. See docs/experiments.md for every key.
public struct Experiment: Sendable {
    /// The synthetic stream every grid point starts from.
    struct StreamRecipe: Sendable, Equatable {
        var shapes: [(rows: Int, columns: Int)]
        var steps: Int
        var learningRate: Double
        var profile: SynthProfile
        var seed: UInt64

        static func == (lhs: StreamRecipe, rhs: StreamRecipe) -> Bool {
            lhs.shapes.map { [$0.rows, $0.columns] } == rhs.shapes.map { [$0.rows, $0.columns] }
                && lhs.steps == rhs.steps && lhs.learningRate == rhs.learningRate
                && lhs.profile == rhs.profile && lhs.seed == rhs.seed
        }

        var elements: Int { shapes.reduce(0) { $0 + $1.rows * $1.columns } }
        var shapeText: String { shapes.map { "\($0.rows)x\($0.columns)" }.joined(separator: ",") }
    }

    /// How each stream is replayed.
    struct ReplaySettings: Sendable {
        var format: FloatFormat
        var policies: [ReplayPolicy]
        var nullPermute: Bool
        var curveEvery: Int?
        var seed: UInt64
    }

    /// Options of the fp32-truth spectral comparison W0 -> W_T.
    struct SpectralSettings: Sendable {
        var k: Int
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

    /// A grid axis: a stream parameter or the replay's storage format.
    enum Axis: String, CaseIterable, Sendable {
        case profile, lr, steps, seed, dtype

        /// Numeric axes can be the x axis of a line plot.
        var isNumeric: Bool { self == .lr || self == .steps || self == .seed }
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
                case (.profile, .text(let text)): recipe.profile = SynthProfile(rawValue: text)!
                case (.lr, .number(let number)): recipe.learningRate = number
                case (.steps, .number(let number)): recipe.steps = Int(number)
                case (.seed, .number(let number)): recipe.seed = UInt64(number)
                case (.dtype, .text(let text)): format = (try? FloatFormat.named(text)) ?? format
                default: break
                }
            }
            return GridPoint(index: index, values: values, stream: recipe, format: format)
        }
    }
}
