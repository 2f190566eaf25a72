#if canImport(Glibc)
import Glibc
#endif

/// AdamW with the update rule of `torch.optim.AdamW` (fp32 parameters and state),
/// operation by operation, each rounded to fp32 as PyTorch's CPU kernels round it:
///
///     t += 1
///     w ← w · fp32(1 − lr·wd)                          (decoupled weight decay)
///     m ← fma(fp32(1 − β1), g − m, m)                  (lerp_, vectorised form)
///     v ← v · fp32(β2);  v ← v + (fp32(1 − β2) · g) · g (mul_, addcmul_)
///     bc1 = 1 − β1^t,  bc2 = 1 − β2^t                  (float64, as Python computes them)
///     denom = √v / fp32(√bc2) + fp32(ε)
///     w ← w + (fp32(−lr/bc1) · m) / denom              (addcdiv_)
///
/// Scalars are formed in float64 and rounded to fp32 once, as PyTorch converts Python
/// floats for an fp32 tensor.
public final class AdamW {
    public let beta1: Double
    public let beta2: Double
    public let epsilon: Double
    public let weightDecay: Double
    /// Steps taken so far (t).
    public private(set) var stepCount = 0
    /// First and second moments, one array per tensor.
    public private(set) var firstMoments: [[Float]]
    public private(set) var secondMoments: [[Float]]

    public init(counts: [Int], beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
                weightDecay: Double = 0.01) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        firstMoments = counts.map { [Float](repeating: 0, count: $0) }
        secondMoments = counts.map { [Float](repeating: 0, count: $0) }
    }

    /// One step: the new value of every weight. `weights` are the values the optimizer
    /// updates (the fp32 master, or the decoded stored weights), `gradients` already clipped.
    public func step(weights: [[Float]], gradients: [[Float]], learningRate lr: Double) -> [[Float]] {
        stepCount += 1
        let t = Double(stepCount)
        let decay = Float(1 - lr * weightDecay)
        let oneMinusBeta1 = Float(1 - beta1)
        let beta2 = Float(self.beta2), oneMinusBeta2 = Float(1 - self.beta2)
        let biasCorrection1 = 1 - pow(beta1, t)
        let biasCorrection2 = 1 - pow(self.beta2, t)
        let stepSize = Float(-(lr / biasCorrection1))
        let biasCorrection2Root = Float(biasCorrection2.squareRoot())
        let epsilon = Float(self.epsilon)
        var result: [[Float]] = []
        result.reserveCapacity(weights.count)
        for tensor in weights.indices {
            var updated = weights[tensor]
            let count = updated.count
            firstMoments[tensor].withUnsafeMutableBufferPointer { m in
                secondMoments[tensor].withUnsafeMutableBufferPointer { v in
                    gradients[tensor].withUnsafeBufferPointer { g in
                        updated.withUnsafeMutableBufferPointer { w in
                            for i in 0..<count {
                                let decayed = w[i] * decay
                                let gradient = g[i]
                                let first = m[i].addingProduct(oneMinusBeta1, gradient - m[i])
                                var second = v[i] * beta2
                                second = second + (oneMinusBeta2 * gradient) * gradient
                                m[i] = first
                                v[i] = second
                                let denominator = second.squareRoot() / biasCorrection2Root + epsilon
                                w[i] = decayed + (stepSize * first) / denominator
                            }
                        }
                    }
                }
            }
            result.append(updated)
        }
        return result
    }
}

/// Gradient clipping by global norm, as `torch.nn.utils.clip_grad_norm_`: with
/// N = ‖(‖g_1‖, …, ‖g_n‖)‖₂ (accumulated in float64, tensors and elements in order),
/// every gradient is multiplied by fp32(min(1, maxNorm / (N + 1e-6))) when that is below 1.
public enum GradientClipping {
    public static func globalNorm(_ gradients: [[Float]]) -> Double {
        var total = 0.0
        for gradient in gradients {
            var sum = 0.0
            for value in gradient { sum += Double(value) * Double(value) }
            total += sum
        }
        return total.squareRoot()
    }

    /// Clips in place; returns the norm before clipping.
    @discardableResult
    public static func clip(_ gradients: inout [[Float]], maxNorm: Double) -> Double {
        let norm = globalNorm(gradients)
        let coefficient = maxNorm / (norm + 1e-6)
        if coefficient < 1 {
            let scale = Float(coefficient)
            for tensor in gradients.indices {
                gradients[tensor].withUnsafeMutableBufferPointer { g in
                    for i in g.indices { g[i] *= scale }
                }
            }
        }
        return norm
    }
}
