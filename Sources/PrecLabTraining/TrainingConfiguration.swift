import PrecLabFormats
import PrecLabReplay
import PrecLabSupport

/// The three phases of the lab's training.
public enum TrainingMethod: String, Sendable, CaseIterable {
    /// Supervised cross-entropy from random initialisation: makes the base.
    case pretrain
    /// Supervised cross-entropy on correct answers, from a base.
    case sft
    /// REINFORCE with group-normalised advantages (GRPO without clipping) and an
    /// optional exact KL penalty to the base policy, from a base.
    case rl
}

/// Everything that determines a training run (with the starting weights).
public struct TrainingConfiguration: Sendable {
    public var method: TrainingMethod = .pretrain
    /// Prompts per step (rl: each answered `groupSize` times).
    public var batchSize = 128
    public var groupSize = 8
    public var steps = 100
    /// Peak learning rate (after warm-up).
    public var learningRate = 1e-3
    /// Linear warm-up: lr_t = lr · min(1, t / warmup) for step t = 1, 2, ...
    public var warmupSteps = 0
    public var beta1 = 0.9
    public var beta2 = 0.999
    public var epsilon = 1e-8
    public var weightDecay = 0.01
    /// Global-norm clipping threshold (nil: no clipping).
    public var clipNorm: Double? = 1.0
    /// β of the KL penalty to the base policy (rl).
    public var klWeight = 0.0
    /// ε in A = (r − mean) / (std + ε).
    public var advantageEpsilon = 1e-4
    public var storage: ReplayPolicy = .fp32
    public var format: FloatFormat = .bf16
    public var rounding = RoundingOptions()
    /// Seeds prompts, samples, initialisation and stochastic rounding.
    public var seed: UInt64 = 0
    /// Evaluate greedy accuracy every N steps (and at the start and end); 0: only then.
    public var evaluateEvery = 10
    public var threads = ParallelChunks.threadCount

    public init() {}

    public func learningRate(atStep step: Int) -> Double {
        guard warmupSteps > 0 else { return learningRate }
        return learningRate * min(1, Double(step) / Double(warmupSteps))
    }
}
