#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PrecLabSupport

/// AdamW hyper-parameters (Loshchilov and Hutter's decoupled weight decay, with bias
/// correction, as in PyTorch's `torch.optim.AdamW`).
public struct AdamParameters: Sendable, Equatable {
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double
    public var weightDecay: Double

    public init(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
                weightDecay: Double = 0.01) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }
}

/// Advances an fp32 master weight by a proposed fp32 step and returns the delta to
/// record, such that both stream rules hold exactly:
///   recorded == fp32(after − before)   and   fp32(before + recorded) == after.
/// For |proposed| ≤ |before| one pass suffices (Fast2Sum: the subtraction is exact);
/// otherwise `after` is moved to the fixed point of after ← before + (after − before).
@inline(__always)
func advanceMaster(_ before: Float, by proposed: Float) -> (after: Float, recorded: Float) {
    var after = before + proposed
    var recorded = after - before
    var rounds = 0
    while before + recorded != after, rounds < 64 {
        after = before + recorded
        recorded = after - before
        rounds += 1
    }
    return (after, recorded)
}

/// One tensor's optimizer state: the fp32 master weights, the fp32 first and second
/// moments, the fixed signal, and the delta of the last step.
final class AdamWTensorState: @unchecked Sendable {
    let count: Int
    let weights: UnsafeMutableBufferPointer<Float>
    let firstMoment: UnsafeMutableBufferPointer<Float>
    let secondMoment: UnsafeMutableBufferPointer<Float>
    let delta: UnsafeMutableBufferPointer<Float>
    /// The unit-RMS signal S, or nil when the model has none.
    let signal: UnsafeMutableBufferPointer<Float>?
    /// The per-element noise scale (row scale × column scale), or nil when all are 1.
    let noiseScale: UnsafeMutableBufferPointer<Float>?

    init(base: [Float], signal: [Float]?, noiseScale: [Float]? = nil) {
        count = base.count
        weights = .allocate(capacity: count)
        _ = weights.initialize(from: base)
        firstMoment = .allocate(capacity: count)
        firstMoment.initialize(repeating: 0)
        secondMoment = .allocate(capacity: count)
        secondMoment.initialize(repeating: 0)
        delta = .allocate(capacity: count)
        delta.initialize(repeating: 0)
        if let signal {
            precondition(signal.count == count)
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            _ = buffer.initialize(from: signal)
            self.signal = buffer
        } else {
            self.signal = nil
        }
        if let noiseScale {
            precondition(noiseScale.count == count)
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            _ = buffer.initialize(from: noiseScale)
            self.noiseScale = buffer
        } else {
            self.noiseScale = nil
        }
    }

    deinit {
        weights.deallocate()
        firstMoment.deallocate()
        secondMoment.deallocate()
        delta.deallocate()
        signal?.deallocate()
        noiseScale?.deallocate()
    }
}

/// The per-step constants of the AdamW update, in fp32 as a PyTorch fp32 optimizer
/// holds them.
struct AdamWStepConstants {
    let beta1: Float, oneMinusBeta1: Float
    let beta2: Float, oneMinusBeta2: Float
    /// lr / (1 − β1^t)
    let stepSize: Float
    /// sqrt(1 − β2^t)
    let secondMomentCorrection: Float
    let epsilon: Float
    /// lr · weight decay
    let decay: Float
    let signalScale: Float

    init(adam: AdamParameters, learningRate: Double, step t: Int, signalScale: Double) {
        beta1 = Float(adam.beta1); oneMinusBeta1 = Float(1 - adam.beta1)
        beta2 = Float(adam.beta2); oneMinusBeta2 = Float(1 - adam.beta2)
        stepSize = Float(learningRate / (1 - pow(adam.beta1, Double(t))))
        secondMomentCorrection = Float((1 - pow(adam.beta2, Double(t))).squareRoot())
        epsilon = Float(adam.epsilon)
        decay = Float(learningRate * adam.weightDecay)
        self.signalScale = Float(signalScale)
    }
}

enum AdamWKernel {
    /// Elements per parallel chunk; even, so Box-Muller pairs never straddle chunks.
    static let chunkSize = 16_384

    /// One AdamW step over every element of `state`, with gradient
    /// g = a_s·S + a_n·c·N_t (N_t from `noise`, c the per-element noise scale). Writes the recorded deltas to
    /// `state.delta` and advances `state.weights`.
    static func step(_ state: AdamWTensorState, constants: AdamWStepConstants,
                     noise: CounterRandom, noiseRMS: Double, threads: Int) {
        let box = UnsafeSendable(state)
        ParallelChunks.forEach(count: state.count, chunkSize: chunkSize, threads: threads) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: range.count) { scratch in
                let gradient = scratch.baseAddress!
                if noiseRMS != 0 {
                    noise.fillGaussian(gradient, elements: range, scale: noiseRMS)
                    if let scale = box.value.noiseScale {
                        multiply(gradient, by: scale.baseAddress! + range.lowerBound, count: range.count)
                    }
                } else {
                    gradient.initialize(repeating: 0, count: range.count)
                }
                if let signal = box.value.signal {
                    addScaled(signal.baseAddress! + range.lowerBound, constants.signalScale,
                              into: gradient, count: range.count)
                }
                update(box.value, range: range, gradient: gradient, constants: constants)
            }
        }
    }

    /// gradient[i] *= scale[i]
    @inline(__always)
    private static func multiply(_ gradient: UnsafeMutablePointer<Float>, by scale: UnsafePointer<Float>,
                                 count: Int) {
        for i in 0 ..< count { gradient[i] *= scale[i] }
    }

    /// gradient[i] += scale · signal[i]
    @inline(__always)
    private static func addScaled(_ signal: UnsafePointer<Float>, _ scale: Float,
                                  into gradient: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0 ..< count { gradient[i] += scale * signal[i] }
    }

    private typealias Lanes = SIMD8<Float>

    /// The AdamW update of `range`, eight lanes at a time, then a scalar tail.
    private static func update(_ state: AdamWTensorState, range: Range<Int>,
                               gradient: UnsafeMutablePointer<Float>, constants c: AdamWStepConstants) {
        let w = state.weights.baseAddress! + range.lowerBound
        let m = state.firstMoment.baseAddress! + range.lowerBound
        let v = state.secondMoment.baseAddress! + range.lowerBound
        let d = state.delta.baseAddress! + range.lowerBound
        let count = range.count
        let width = Lanes.scalarCount
        var i = 0
        while i + width <= count {
            let g = UnsafeRawPointer(gradient + i).loadUnaligned(as: Lanes.self)
            let before = UnsafeRawPointer(w + i).loadUnaligned(as: Lanes.self)
            let mNew = c.beta1 * UnsafeRawPointer(m + i).loadUnaligned(as: Lanes.self) + c.oneMinusBeta1 * g
            let vNew = c.beta2 * UnsafeRawPointer(v + i).loadUnaligned(as: Lanes.self) + c.oneMinusBeta2 * (g * g)
            let denominator = vNew.squareRoot() / c.secondMomentCorrection + c.epsilon
            let proposed = -(c.stepSize * mNew / denominator) - c.decay * before
            var after = before + proposed
            var recorded = after - before
            if any(before + recorded .!= after) {
                for lane in 0 ..< width {
                    (after[lane], recorded[lane]) = advanceMaster(before[lane], by: proposed[lane])
                }
            }
            UnsafeMutableRawPointer(m + i).storeBytes(of: mNew, as: Lanes.self)
            UnsafeMutableRawPointer(v + i).storeBytes(of: vNew, as: Lanes.self)
            UnsafeMutableRawPointer(w + i).storeBytes(of: after, as: Lanes.self)
            UnsafeMutableRawPointer(d + i).storeBytes(of: recorded, as: Lanes.self)
            i += width
        }
        while i < count {
            let g = gradient[i]
            let before = w[i]
            let mNew = c.beta1 * m[i] + c.oneMinusBeta1 * g
            let vNew = c.beta2 * v[i] + c.oneMinusBeta2 * (g * g)
            let denominator = vNew.squareRoot() / c.secondMomentCorrection + c.epsilon
            let proposed = -(c.stepSize * mNew / denominator) - c.decay * before
            let (after, recorded) = advanceMaster(before, by: proposed)
            m[i] = mNew; v[i] = vNew; w[i] = after; d[i] = recorded
            i += 1
        }
    }
}
