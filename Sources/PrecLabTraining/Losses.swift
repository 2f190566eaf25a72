/// A loss value with its gradient with respect to the logits.
public struct LossAndGradient<S: TrainingScalar> {
    /// The loss the gradient belongs to.
    public var loss: Double
    /// Mean KL(π_θ ‖ π_ref) over the rows (0 without a reference).
    public var kl: Double
    /// dLoss/dlogits, row-major like the logits.
    public var logitGradient: [S]
}

/// Log-softmax of each row, computed as z - max - log Σ exp(z - max).
public enum LogSoftmax {
    public static func rows<S: TrainingScalar>(_ logits: [S], classes: Int) -> [S] {
        var result = logits
        for start in stride(from: 0, to: logits.count, by: classes) {
            var largest = logits[start]
            for j in 1..<classes { largest = max(largest, logits[start + j]) }
            var sum: S = 0
            for j in 0..<classes { sum += S.exponential(logits[start + j] - largest) }
            let shift = largest + S.logarithm(sum)
            for j in 0..<classes { result[start + j] = logits[start + j] - shift }
        }
        return result
    }
}

public enum Losses {
    /// Supervised cross-entropy, mean over the batch:
    /// L = (1/B) Σ_b −log softmax(z_b)[y_b]; dL/dz_b = (softmax(z_b) − onehot(y_b)) / B.
    public static func crossEntropy<S: TrainingScalar>(logits: [S], classes: Int, targets: [Int]) -> LossAndGradient<S> {
        let batch = targets.count
        precondition(logits.count == batch * classes)
        let logProbabilities = LogSoftmax.rows(logits, classes: classes)
        var gradient = [S](repeating: 0, count: logits.count)
        var loss = 0.0
        let scale = 1 / S(batch)
        for row in 0..<batch {
            let start = row * classes
            loss -= Double(logProbabilities[start + targets[row]])
            for j in 0..<classes { gradient[start + j] = S.exponential(logProbabilities[start + j]) * scale }
            gradient[start + targets[row]] -= scale
        }
        return LossAndGradient(loss: loss / Double(batch), kl: 0, logitGradient: gradient)
    }

    /// The REINFORCE surrogate with group-normalised advantages and an exact KL penalty
    /// to a reference policy, over P prompts with G sampled actions each:
    ///
    ///   L = −(1/(P·G)) Σ_p Σ_g A_pg · log π(a_pg | x_p) + β · (1/P) Σ_p KL_p,
    ///   KL_p = Σ_j π_pj (log π_pj − log ρ_pj),
    ///
    ///   dL/dz_pj = −(1/(P·G)) Σ_g A_pg (δ(j, a_pg) − π_pj) + (β/P) π_pj (log π_pj − log ρ_pj − KL_p).
    ///
    /// The advantages are constants (no gradient flows through them), as in GRPO
    /// without ratio clipping. `referenceLogProbabilities` may be nil when β is 0.
    public static func policyGradient<S: TrainingScalar>(
        logits: [S], classes: Int, actions: [[Int]], advantages: [[Double]],
        referenceLogProbabilities: [S]?, klWeight beta: Double
    ) -> LossAndGradient<S> {
        let prompts = actions.count
        precondition(logits.count == prompts * classes && advantages.count == prompts)
        let logProbabilities = LogSoftmax.rows(logits, classes: classes)
        var gradient = [S](repeating: 0, count: logits.count)
        var surrogate = 0.0, klSum = 0.0
        for p in 0..<prompts {
            let start = p * classes
            let group = actions[p].count
            let weight = 1 / Double(prompts * group)
            var advantageSum = 0.0
            for (g, action) in actions[p].enumerated() {
                let advantage = advantages[p][g]
                surrogate -= weight * advantage * Double(logProbabilities[start + action])
                gradient[start + action] -= S(weight * advantage)
                advantageSum += advantage
            }
            for j in 0..<classes {
                gradient[start + j] += S(weight * advantageSum) * S.exponential(logProbabilities[start + j])
            }
            if let reference = referenceLogProbabilities {
                var kl = 0.0
                for j in 0..<classes {
                    kl += Double(S.exponential(logProbabilities[start + j]))
                        * Double(logProbabilities[start + j] - reference[start + j])
                }
                klSum += kl
                if beta != 0 {
                    let scale = beta / Double(prompts)
                    for j in 0..<classes {
                        let probability = Double(S.exponential(logProbabilities[start + j]))
                        let gap = Double(logProbabilities[start + j] - reference[start + j]) - kl
                        gradient[start + j] += S(scale * probability * gap)
                    }
                }
            }
        }
        let meanKL = klSum / Double(prompts)
        return LossAndGradient(loss: surrogate + beta * meanKL, kl: meanKL, logitGradient: gradient)
    }

    /// Group-normalised advantages: A = (r − mean) / (std + ε), std the population
    /// standard deviation of the group's rewards. A group whose rewards are all equal
    /// gets zero advantages (no learning signal).
    public static func groupAdvantages(_ rewards: [Double], epsilon: Double = 1e-4) -> [Double] {
        let mean = rewards.reduce(0, +) / Double(rewards.count)
        let variance = rewards.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(rewards.count)
        let scale = 1 / (variance.squareRoot() + epsilon)
        return rewards.map { ($0 - mean) * scale }
    }

    /// Samples an action from softmax(logits row) by inverting the CDF at u ∈ [0, 1)
    /// (probabilities summed in float64, in class order).
    public static func sample<S: TrainingScalar>(logProbabilities: [S], row: Int, classes: Int, uniform u: Double) -> Int {
        var cumulative = 0.0
        let start = row * classes
        for j in 0..<classes {
            cumulative += Double(S.exponential(logProbabilities[start + j]))
            if u < cumulative { return j }
        }
        return classes - 1
    }
}
