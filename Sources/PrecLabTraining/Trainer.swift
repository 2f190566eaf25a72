import PrecLabFormats
import PrecLabReplay
import PrecLabSupport

/// One step's measurements (a row of the CSV log).
public struct StepLog: Sendable {
    public var step: Int
    public var learningRate: Double
    /// The minimised loss (cross-entropy, or the RL surrogate with its KL term).
    public var loss: Double
    /// Mean reward: of the sampled answers (rl), of the greedy answers on the batch (supervised).
    public var reward: Double
    /// Greedy accuracy on the step's prompts.
    public var accuracy: Double
    /// Greedy accuracy on the evaluation set, when evaluated at this step.
    public var evaluationAccuracy: Double?
    /// Mean KL(π_θ ‖ π_base) on the step's prompts (0 for pretrain).
    public var kl: Double
    /// Global gradient norm before clipping.
    public var gradientNorm: Double
    /// RMS of the intended update over RMS of the weights (all tensors).
    public var updateToWeightRMS: Double
    /// Fraction of non-zero intended updates that changed no stored bit in this step.
    public var vanishedFraction: Double
}

/// The closed training loop: forward, loss, backward, clipping, AdamW, storage.
public final class Trainer {
    public let configuration: TrainingConfiguration
    public let architecture: MLPArchitecture
    public let task: ModularAdditionTask
    public let storage: WeightStorage
    public let optimizer: AdamW
    /// The fp32 starting weights.
    public let initialWeights: [[Float]]
    /// The forward weights at step 0: the reference policy of the KL term.
    public let referenceWeights: [[Float]]
    public private(set) var stepsDone = 0
    let evaluationPrompts: [ModularAdditionTask.Prompt]
    /// Overrides the task's reward (tests).
    let rewardFunction: (ModularAdditionTask.Prompt, Int) -> Double

    public init(configuration: TrainingConfiguration, architecture: MLPArchitecture, task: ModularAdditionTask,
                initialWeights: [[Float]],
                reward: ((ModularAdditionTask.Prompt, Int) -> Double)? = nil) {
        precondition(architecture.inputs == task.inputWidth && architecture.outputs == task.classes)
        precondition(initialWeights.map(\.count) == architecture.parameters.map(\.count))
        self.configuration = configuration
        self.architecture = architecture
        self.task = task
        self.initialWeights = initialWeights
        storage = WeightStorage(initial: initialWeights, policy: configuration.storage, format: configuration.format,
                                rounding: configuration.rounding, seed: configuration.seed,
                                threads: configuration.threads)
        referenceWeights = storage.forwardWeights
        optimizer = AdamW(counts: initialWeights.map(\.count), beta1: configuration.beta1, beta2: configuration.beta2,
                          epsilon: configuration.epsilon, weightDecay: configuration.weightDecay)
        evaluationPrompts = task.evaluationSet(seed: configuration.seed)
        rewardFunction = reward ?? { prompt, action in task.reward(prompt, action) }
        TrainingBLAS.useOneThread()
    }

    /// Greedy accuracy of the current forward weights on the evaluation set.
    public func evaluate() -> Double {
        Trainer.accuracy(architecture, storage.forwardWeights, task, evaluationPrompts)
    }

    /// Greedy accuracy of `weights` on `prompts` (rows in blocks of 1024).
    public static func accuracy(_ architecture: MLPArchitecture, _ weights: [[Float]], _ task: ModularAdditionTask,
                                _ prompts: [ModularAdditionTask.Prompt]) -> Double {
        var correct = 0
        var start = 0
        while start < prompts.count {
            let block = Array(prompts[start..<min(prompts.count, start + 1024)])
            let pass = MLPNetwork.forward(architecture, parameters: weights, features: task.encode(block),
                                          batch: block.count)
            let actions = MLPNetwork.greedyActions(pass.logits, classes: task.classes)
            for (prompt, action) in zip(block, actions) where action == task.answer(prompt) { correct += 1 }
            start += block.count
        }
        return Double(correct) / Double(prompts.count)
    }

    /// Runs the next step; returns its log and what storage did.
    public func step() -> (log: StepLog, effect: WeightStorage.StepEffect) {
        let step = stepsDone + 1
        let configuration = self.configuration
        let classes = task.classes
        let prompts = task.prompts(count: configuration.batchSize, seed: configuration.seed, step: UInt64(step))
        let features: [Float] = task.encode(prompts)
        let weights = storage.forwardWeights
        let pass = MLPNetwork.forward(architecture, parameters: weights, features: features, batch: prompts.count)
        let greedy = MLPNetwork.greedyActions(pass.logits, classes: classes)
        let accuracy = Double(zip(prompts, greedy).filter { task.answer($0) == $1 }.count) / Double(prompts.count)

        var referenceLogProbabilities: [Float]? = nil
        if configuration.method != .pretrain {
            let reference = MLPNetwork.forward(architecture, parameters: referenceWeights, features: features,
                                               batch: prompts.count)
            referenceLogProbabilities = LogSoftmax.rows(reference.logits, classes: classes)
        }

        let lossAndGradient: LossAndGradient<Float>
        var reward = accuracy
        switch configuration.method {
        case .pretrain, .sft:
            var result = Losses.crossEntropy(logits: pass.logits, classes: classes, targets: prompts.map(task.answer))
            if let reference = referenceLogProbabilities {
                result.kl = Trainer.meanKL(LogSoftmax.rows(pass.logits, classes: classes), reference, classes)
            }
            lossAndGradient = result
        case .rl:
            let logProbabilities = LogSoftmax.rows(pass.logits, classes: classes)
            var random = SplitMix64(seed: configuration.seed, purpose: .samples, index: UInt64(step))
            var actions: [[Int]] = []
            var advantages: [[Double]] = []
            var rewardSum = 0.0
            for (p, prompt) in prompts.enumerated() {
                let group = (0..<configuration.groupSize).map { _ in
                    Losses.sample(logProbabilities: logProbabilities, row: p, classes: classes,
                                  uniform: random.nextUniform())
                }
                let rewards = group.map { rewardFunction(prompt, $0) }
                rewardSum += rewards.reduce(0, +)
                actions.append(group)
                advantages.append(Losses.groupAdvantages(rewards, epsilon: configuration.advantageEpsilon))
            }
            reward = rewardSum / Double(prompts.count * configuration.groupSize)
            lossAndGradient = Losses.policyGradient(logits: pass.logits, classes: classes, actions: actions,
                                                    advantages: advantages,
                                                    referenceLogProbabilities: referenceLogProbabilities,
                                                    klWeight: configuration.klWeight)
        }

        var gradients = MLPNetwork.backward(architecture, parameters: weights, pass: pass,
                                            logitGradient: lossAndGradient.logitGradient)
        let gradientNorm: Double
        if let clip = configuration.clipNorm {
            gradientNorm = GradientClipping.clip(&gradients, maxNorm: clip)
        } else {
            gradientNorm = GradientClipping.globalNorm(gradients)
        }
        let learningRate = configuration.learningRate(atStep: step)
        let before = storage.optimizerWeights
        let newWeights = optimizer.step(weights: before, gradients: gradients, learningRate: learningRate)
        let effect = storage.apply(step: UInt64(step), newWeights: newWeights)
        stepsDone = step

        var updateSquares = 0.0, weightSquares = 0.0
        for tensor in before.indices {
            updateSquares += sumOfSquares(effect.updates[tensor])
            weightSquares += sumOfSquares(before[tensor])
        }
        let evaluate = step == configuration.steps
            || (configuration.evaluateEvery > 0 && step % configuration.evaluateEvery == 0)
        let log = StepLog(
            step: step, learningRate: learningRate, loss: lossAndGradient.loss, reward: reward, accuracy: accuracy,
            evaluationAccuracy: evaluate ? self.evaluate() : nil, kl: lossAndGradient.kl,
            gradientNorm: gradientNorm,
            updateToWeightRMS: weightSquares > 0 ? (updateSquares / weightSquares).squareRoot() : 0,
            vanishedFraction: effect.nonZeroUpdates > 0 ? Double(effect.vanished) / Double(effect.nonZeroUpdates) : 0)
        return (log, effect)
    }

    static func meanKL(_ logProbabilities: [Float], _ reference: [Float], _ classes: Int) -> Double {
        var total = 0.0
        for index in logProbabilities.indices {
            total += Double(logProbabilities[index].exp) * Double(logProbabilities[index] - reference[index])
        }
        return total / Double(logProbabilities.count / classes)
    }
}

extension Float {
    var exp: Float { Float.exponential(self) }
}
