import XCTest
@testable import PrecLabTraining

/// AdamW against the update worked out by hand and against the textbook formula.
final class AdamWTests: XCTestCase {
    /// w = 1, g = 0.5, lr = 0.1, wd = 0.1: decay to 0.99; m = 0.05, v = 0.00025;
    /// bias-corrected m̂ = 0.5, v̂ = 0.25, so the step is lr · 0.5 / (0.5 + ε) ≈ 0.1 and w ≈ 0.89.
    func testOneStepByHand() {
        let adam = AdamW(counts: [1], beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1)
        let w = adam.step(weights: [[1]], gradients: [[0.5]], learningRate: 0.1)[0][0]
        let expected = 0.99 - 0.1 * 0.5 / (0.5 + 1e-8)
        XCTAssertEqual(Double(w), expected, accuracy: 2 * Double(Float(0.89).ulp))
        XCTAssertEqual(Double(adam.firstMoments[0][0]), 0.05, accuracy: Double(Float(0.05).ulp))
        XCTAssertEqual(Double(adam.secondMoments[0][0]), 0.00025, accuracy: 2 * Double(Float(0.00025).ulp))
    }

    /// Without bias correction the first step would be lr · 0.05 / (√0.00025 + ε) ≈ 0.316·lr;
    /// with it, every coordinate's first step is lr · sign(g) (up to ε).
    func testFirstStepIsLearningRateTimesSignWhateverTheGradientScale() {
        let adam = AdamW(counts: [3], weightDecay: 0)
        let w = adam.step(weights: [[0, 0, 0]], gradients: [[1e-3, -7, 250]], learningRate: 0.01)[0]
        XCTAssertEqual(w[0], -0.01, accuracy: 1e-7)
        XCTAssertEqual(w[1], 0.01, accuracy: 1e-7)
        XCTAssertEqual(w[2], -0.01, accuracy: 1e-7)
    }

    /// Three steps against the textbook AdamW in float64:
    /// w ← w(1 − lr·wd) − lr · m̂/(√v̂ + ε), m̂ = m/(1 − β1^t), v̂ = v/(1 − β2^t).
    func testThreeStepsAgainstTextbookFormula() {
        let gradients: [Double] = [0.3, -0.1, 0.7]
        let (b1, b2, eps, wd) = (0.8, 0.99, 1e-6, 0.05)
        let lrs = [0.01, 0.02, 0.005]
        let adam = AdamW(counts: [1], beta1: b1, beta2: b2, epsilon: eps, weightDecay: wd)
        var weights: [[Float]] = [[0.5]]
        var w = 0.5, m = 0.0, v = 0.0
        for t in 1...3 {
            let g = gradients[t - 1], lr = lrs[t - 1]
            weights = adam.step(weights: weights, gradients: [[Float(g)]], learningRate: lr)
            w *= 1 - lr * wd
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            let mHat = m / (1 - pow(b1, Double(t))), vHat = v / (1 - pow(b2, Double(t)))
            w -= lr * mHat / (vHat.squareRoot() + eps)
            XCTAssertEqual(Double(weights[0][0]), w, accuracy: 4 * Double(Float(w).ulp), "step \(t)")
        }
        XCTAssertEqual(adam.stepCount, 3)
    }

    /// With a zero gradient only the decoupled decay acts: w·fp32(1 − lr·wd) exactly, each step.
    func testZeroGradientDecaysExactly() {
        let adam = AdamW(counts: [2], weightDecay: 0.1)
        var weights: [[Float]] = [[0.75, -3]]
        for _ in 0..<3 { weights = adam.step(weights: weights, gradients: [[0, 0]], learningRate: 0.01) }
        let decay = Float(1 - 0.01 * 0.1)
        XCTAssertEqual(weights[0][0].bitPattern, (0.75 * decay * decay * decay).bitPattern)
        XCTAssertEqual(weights[0][1].bitPattern, ((-3) * decay * decay * decay).bitPattern)
    }

    /// Decay is decoupled: it does not pass through the moments (a coupled L2 term would
    /// make m non-zero under a zero gradient).
    func testWeightDecayDoesNotEnterTheMoments() {
        let adam = AdamW(counts: [1], weightDecay: 0.5)
        _ = adam.step(weights: [[2]], gradients: [[0]], learningRate: 0.1)
        XCTAssertEqual(adam.firstMoments[0][0], 0)
        XCTAssertEqual(adam.secondMoments[0][0], 0)
    }

    func testGlobalNormClipping() {
        var gradients: [[Float]] = [[3, 0], [4]]
        let norm = GradientClipping.clip(&gradients, maxNorm: 1)
        XCTAssertEqual(norm, 5)
        let scale = Float(1 / (5 + 1e-6))
        XCTAssertEqual(gradients[0][0], 3 * scale)
        XCTAssertEqual(gradients[1][0], 4 * scale)
        var small: [[Float]] = [[0.3], [0.4]]
        GradientClipping.clip(&small, maxNorm: 1)
        XCTAssertEqual(small, [[0.3], [0.4]])
    }
}
