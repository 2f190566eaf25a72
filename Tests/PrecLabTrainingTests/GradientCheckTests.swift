import XCTest
@testable import PrecLabTraining

/// Backpropagation checked against central finite differences, in Float64 so that the
/// difference quotient (step 1e-6) is accurate to about 1e-9 relative: every parameter
/// of every layer, and both losses with respect to the logits.
final class GradientCheckTests: XCTestCase {
    let architecture = MLPArchitecture(inputs: 4, hidden: [5, 6], outputs: 4, activation: .relu)

    func randomParameters(_ architecture: MLPArchitecture, seed: UInt64) -> [[Double]] {
        architecture.initialParameters(seed: seed).map { $0.map { Double($0) * 1.5 } }
    }

    func features(batch: Int, inputs: Int, seed: UInt64) -> [Double] {
        var random = SplitMix64(state: seed)
        return (0..<(batch * inputs)).map { _ in 2 * random.nextUniform() - 1 }
    }

    /// Loss of a fixed linear functional of the logits: L = Σ c_i z_i with c fixed.
    func checkParameterGradients(_ architecture: MLPArchitecture, lossOf: ([Double]) -> (Double, [Double]),
                                 file: StaticString = #filePath, line: UInt = #line) {
        let batch = 3
        let x = features(batch: batch, inputs: architecture.inputs, seed: 7)
        let parameters = randomParameters(architecture, seed: 3)
        let pass = MLPNetwork.forward(architecture, parameters: parameters, features: x, batch: batch)
        let (_, logitGradient) = lossOf(pass.logits)
        let gradients = MLPNetwork.backward(architecture, parameters: parameters, pass: pass,
                                            logitGradient: logitGradient)
        let h = 1e-6
        var checked = 0
        for tensor in parameters.indices {
            for index in parameters[tensor].indices {
                var plus = parameters, minus = parameters
                plus[tensor][index] += h
                minus[tensor][index] -= h
                let lossPlus = lossOf(MLPNetwork.forward(architecture, parameters: plus, features: x, batch: batch).logits).0
                let lossMinus = lossOf(MLPNetwork.forward(architecture, parameters: minus, features: x, batch: batch).logits).0
                let numeric = (lossPlus - lossMinus) / (2 * h)
                let analytic = gradients[tensor][index]
                XCTAssertEqual(analytic, numeric, accuracy: 1e-7 + 1e-6 * abs(numeric),
                               "tensor \(architecture.parameters[tensor].name) element \(index)", file: file, line: line)
                checked += 1
            }
        }
        XCTAssertEqual(checked, architecture.parameterCount, file: file, line: line)
    }

    func testEveryLayerReLUAgainstFiniteDifferences() {
        let weights = features(batch: 3, inputs: 4, seed: 11)
        checkParameterGradients(architecture) { logits in
            (zip(logits, weights).map { $0 * $1 }.reduce(0, +), weights)
        }
    }

    func testEveryLayerGELUThroughCrossEntropy() {
        let gelu = MLPArchitecture(inputs: 4, hidden: [5, 6], outputs: 4, activation: .gelu)
        checkParameterGradients(gelu) { logits in
            let result: LossAndGradient<Double> = Losses.crossEntropy(logits: logits, classes: 4, targets: [0, 3, 2])
            return (result.loss, result.logitGradient)
        }
    }

    func testGELUDerivativeMatchesDifferenceQuotient() {
        for z in [-3.0, -0.7, -1e-3, 0, 0.25, 1.3, 4] {
            let numeric = (Activation.gelu.apply(z + 1e-6) - Activation.gelu.apply(z - 1e-6)) / 2e-6
            XCTAssertEqual(Activation.gelu.derivative(z), numeric, accuracy: 1e-8)
        }
        // GELU(1) = Φ(1) = 0.841344746... by the normal table.
        XCTAssertEqual(Activation.gelu.apply(1.0), 0.8413447460685429, accuracy: 1e-15)
    }

    func lossGradientCheck(_ lossOf: ([Double]) -> LossAndGradient<Double>, logits: [Double]) {
        let analytic = lossOf(logits).logitGradient
        for index in logits.indices {
            var plus = logits, minus = logits
            plus[index] += 1e-6
            minus[index] -= 1e-6
            let numeric = (lossOf(plus).loss - lossOf(minus).loss) / 2e-6
            XCTAssertEqual(analytic[index], numeric, accuracy: 1e-8 + 1e-6 * abs(numeric), "logit \(index)")
        }
    }

    func testCrossEntropyGradient() {
        let logits = features(batch: 3, inputs: 5, seed: 21).map { 3 * $0 }
        lossGradientCheck({ Losses.crossEntropy(logits: $0, classes: 5, targets: [4, 0, 2]) }, logits: logits)
        // By hand: uniform logits over 5 classes give loss log 5.
        let uniform: LossAndGradient<Double> = Losses.crossEntropy(logits: [Double](repeating: 0.3, count: 5),
                                                                   classes: 5, targets: [1])
        XCTAssertEqual(uniform.loss, log(5), accuracy: 1e-15)
        XCTAssertEqual(uniform.logitGradient[1], 0.2 - 1, accuracy: 1e-15)
    }

    func testPolicyGradientSurrogateWithKLGradient() {
        let logits = features(batch: 2, inputs: 4, seed: 31).map { 2 * $0 }
        let reference = LogSoftmax.rows(features(batch: 2, inputs: 4, seed: 41), classes: 4)
        let actions = [[0, 2, 2], [3, 1, 0]]
        let advantages = [Losses.groupAdvantages([1, 0, 0]), Losses.groupAdvantages([0, 1, 1])]
        for beta in [0.0, 0.3] {
            lossGradientCheck({
                Losses.policyGradient(logits: $0, classes: 4, actions: actions, advantages: advantages,
                                      referenceLogProbabilities: reference, klWeight: beta)
            }, logits: logits)
        }
        // KL of a policy with itself is zero, and so is its gradient.
        let same = Losses.policyGradient(logits: logits, classes: 4, actions: actions,
                                         advantages: [[0, 0, 0], [0, 0, 0]],
                                         referenceLogProbabilities: LogSoftmax.rows(logits, classes: 4), klWeight: 1)
        XCTAssertEqual(same.kl, 0, accuracy: 1e-15)
        XCTAssertTrue(same.logitGradient.allSatisfy { abs($0) < 1e-15 })
    }

    func testGroupAdvantagesByHand() {
        // Rewards 1,0,0,0: mean 0.25, population std √(0.1875) = 0.4330127...
        let advantages = Losses.groupAdvantages([1, 0, 0, 0], epsilon: 0)
        XCTAssertEqual(advantages[0], 0.75 / 0.4330127018922193, accuracy: 1e-12)
        XCTAssertEqual(advantages[1], -0.25 / 0.4330127018922193, accuracy: 1e-12)
        XCTAssertEqual(Losses.groupAdvantages([0, 0, 0]), [0, 0, 0])
        XCTAssertEqual(Losses.groupAdvantages([1, 1]), [0, 0])
    }

    func testFloatForwardMatchesDouble() {
        let parameters = architecture.initialParameters(seed: 5)
        let x: [Float] = features(batch: 3, inputs: 4, seed: 9).map { Float($0) }
        let single = MLPNetwork.forward(architecture, parameters: parameters, features: x, batch: 3).logits
        let double = MLPNetwork.forward(architecture, parameters: parameters.map { $0.map(Double.init) },
                                        features: x.map(Double.init), batch: 3).logits
        for (s, d) in zip(single, double) { XCTAssertEqual(Double(s), d, accuracy: 1e-5 * max(1, abs(d))) }
    }
}
