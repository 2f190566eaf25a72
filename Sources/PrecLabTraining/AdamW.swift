#if canImport(Glibc)
import Glibc
#endif

/// AdamW with the update rule of `torch.optim.AdamW` (fp32 parameters and state),
/// operation by operation, each rounded to fp32 as PyTorch's CPU kernels round it:
///
///     t += 1
///     w ← w · fp32(1 − lr·wd)                          (decoupled weight decay)
///     m ← m + fp32(1 − β1) · (g − m)                   (lerp_ with weight < 0.5)
///     v ← v · fp32(β2);  v ← v + (fp32(1 − β2) · g) · g (mul_, addcmul_)
///     bc1 = 1 − β1^t,  bc2 = 1 − β2^t                  (float64, as Python computes them)
///     denom = √v / fp32(√bc2) + fp32(ε)
///     w ← w + (fp32(−lr/bc1) · m) / denom              (addcdiv_)
///
/// Scalars are formed in float64 and rounded to fp32 once, as PyTorch converts Python
/// floats for an fp32 tensor. lerp_ is PyTorch's scalar formula; its AVX2 kernel fuses
/// that multiply-add, so a vectorised PyTorch run may differ in the last bit of m.
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
            firstMoments[tensor].withUnsafeMutableBufferPointer { mBuffer in
                secondMoments[tensor].withUnsafeMutableBufferPointer { vBuffer in
                    gradients[tensor].withUnsafeBufferPointer { gBuffer in
                        updated.withUnsafeMutableBufferPointer { wBuffer in
                            AdamW.update(w: wBuffer.baseAddress!, m: mBuffer.baseAddress!, v: vBuffer.baseAddress!,
                                         g: gBuffer.baseAddress!, count: count,
                                         constants: Constants(decay: decay, oneMinusBeta1: oneMinusBeta1, beta2: beta2,
                                                              oneMinusBeta2: oneMinusBeta2, stepSize: stepSize,
                                                              biasCorrection2Root: biasCorrection2Root,
                                                              epsilon: epsilon))
                        }
                    }
                }
            }
            result.append(updated)
        }
        return result
    }
}

extension AdamW {
    struct Constants {
        var decay, oneMinusBeta1, beta2, oneMinusBeta2, stepSize, biasCorrection2Root, epsilon: Float
    }

    /// The element rule, eight lanes at a time (each lane rounds exactly as the scalar
    /// tail: IEEE operations give the same bits in vector registers), then the tail.
    static func update(w: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                       g: UnsafePointer<Float>, count: Int, constants c: Constants) {
        typealias Lanes = SIMD8<Float>
        let rw = UnsafeMutableRawPointer(w), rm = UnsafeMutableRawPointer(m), rv = UnsafeMutableRawPointer(v)
        let rg = UnsafeRawPointer(g)
        let decay = Lanes(repeating: c.decay), oneMinusBeta1 = Lanes(repeating: c.oneMinusBeta1)
        let beta2 = Lanes(repeating: c.beta2), oneMinusBeta2 = Lanes(repeating: c.oneMinusBeta2)
        let stepSize = Lanes(repeating: c.stepSize), root = Lanes(repeating: c.biasCorrection2Root)
        let epsilon = Lanes(repeating: c.epsilon)
        var i = 0
        while i + 8 <= count {
            let offset = 4 * i
            let weight = rw.loadUnaligned(fromByteOffset: offset, as: Lanes.self)
            let gradient = rg.loadUnaligned(fromByteOffset: offset, as: Lanes.self)
            let moment = rm.loadUnaligned(fromByteOffset: offset, as: Lanes.self)
            let decayed = weight * decay
            let first = moment + oneMinusBeta1 * (gradient - moment)
            var second = rv.loadUnaligned(fromByteOffset: offset, as: Lanes.self) * beta2
            second = second + (oneMinusBeta2 * gradient) * gradient
            let denominator = second.squareRoot() / root + epsilon
            rm.storeBytes(of: first, toByteOffset: offset, as: Lanes.self)
            rv.storeBytes(of: second, toByteOffset: offset, as: Lanes.self)
            rw.storeBytes(of: decayed + (stepSize * first) / denominator, toByteOffset: offset, as: Lanes.self)
            i += 8
        }
        while i < count {
            let decayed = w[i] * c.decay
            let gradient = g[i]
            let first = m[i] + c.oneMinusBeta1 * (gradient - m[i])
            var second = v[i] * c.beta2
            second = second + (c.oneMinusBeta2 * gradient) * gradient
            m[i] = first
            v[i] = second
            let denominator = second.squareRoot() / c.biasCorrection2Root + c.epsilon
            w[i] = decayed + (c.stepSize * first) / denominator
            i += 1
        }
    }
}

/// Gradient clipping by global norm, as `torch.nn.utils.clip_grad_norm_`: with
/// N = ‖(‖g_1‖, …, ‖g_n‖)‖₂ (squares accumulated in float64 by `sumOfSquares`, tensors in order),
/// every gradient is multiplied by fp32(min(1, maxNorm / (N + 1e-6))) when that is below 1.
public enum GradientClipping {
    public static func globalNorm(_ gradients: [[Float]]) -> Double {
        var total = 0.0
        for gradient in gradients { total += sumOfSquares(gradient) }
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
