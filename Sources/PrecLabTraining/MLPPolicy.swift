/// The hidden-layer nonlinearity.
public enum Activation: String, Sendable, CaseIterable {
    /// max(0, z); derivative 1 for z > 0, else 0.
    case relu
    /// The exact GELU, z·Φ(z) = z/2·(1 + erf(z/√2)), as PyTorch's default.
    case gelu

    @inline(__always) func apply<S: TrainingScalar>(_ z: S) -> S {
        switch self {
        case .relu: return z > 0 ? z : 0
        case .gelu: return z * (1 + S.errorFunction(z * S(0.7071067811865476))) / 2
        }
    }

    /// d activation / dz.
    @inline(__always) func derivative<S: TrainingScalar>(_ z: S) -> S {
        switch self {
        case .relu: return z > 0 ? 1 : 0
        case .gelu:
            let cdf = (1 + S.errorFunction(z * S(0.7071067811865476))) / 2
            let density = S.exponential(-z * z / 2) * S(0.3989422804014327)
            return cdf + z * density
        }
    }
}

/// One tensor of the policy: its checkpoint name and row-major shape.
public struct ParameterSpec: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public var count: Int { shape.reduce(1, *) }
    public var isMatrix: Bool { shape.count == 2 }
}

/// The MLP policy: input features -> hidden layers (activation) -> logits.
///
/// Layer l computes z = W_l a + b_l with W_l of shape [out, in] (PyTorch's nn.Linear
/// layout). Hidden layer l is named `model.layers.l.mlp.up_proj` and the output layer
/// `lm_head`, so every preclab command types the matrices as a transformer's (`up`
/// for the hidden layers, `others` for the head). Parameters are ordered
/// [W_0, b_0, W_1, b_1, ..., W_head, b_head].
public struct MLPArchitecture: Sendable, Equatable {
    public let inputs: Int
    public let hidden: [Int]
    public let outputs: Int
    public let activation: Activation

    public init(inputs: Int, hidden: [Int], outputs: Int, activation: Activation) {
        precondition(inputs > 0 && outputs > 0 && !hidden.isEmpty && hidden.allSatisfy { $0 > 0 })
        self.inputs = inputs
        self.hidden = hidden
        self.outputs = outputs
        self.activation = activation
    }

    /// Number of linear layers (hidden layers plus the head).
    public var layerCount: Int { hidden.count + 1 }

    /// (out, in) of linear layer l.
    public func layerShape(_ l: Int) -> (out: Int, in: Int) {
        let widths = [inputs] + hidden + [outputs]
        return (widths[l + 1], widths[l])
    }

    public func layerName(_ l: Int) -> String {
        l == hidden.count ? "lm_head" : "model.layers.\(l).mlp.up_proj"
    }

    public var parameters: [ParameterSpec] {
        (0..<layerCount).flatMap { l -> [ParameterSpec] in
            let (out, input) = layerShape(l)
            return [ParameterSpec(name: layerName(l) + ".weight", shape: [out, input]),
                    ParameterSpec(name: layerName(l) + ".bias", shape: [out])]
        }
    }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// PyTorch nn.Linear's default initialisation: weights and biases uniform in
    /// [-1/√in, 1/√in), drawn as (2u - 1)·bound with u from SplitMix64(seed,
    /// initialization, tensor index), rounded once to fp32.
    public func initialParameters(seed: UInt64) -> [[Float]] {
        parameters.enumerated().map { index, spec in
            let fanIn = layerShape(index / 2).in
            let bound = 1 / Double(fanIn).squareRoot()
            var random = SplitMix64(seed: seed, purpose: .initialization, index: UInt64(index))
            return (0..<spec.count).map { _ in Float((2 * random.nextUniform() - 1) * bound) }
        }
    }

    /// Reconstructs the architecture from parameter shapes in the order above.
    public static func inferred(from shapes: [[Int]], activation: Activation) -> MLPArchitecture? {
        guard shapes.count >= 4, shapes.count % 2 == 0 else { return nil }
        var widths: [Int] = []
        for l in 0..<(shapes.count / 2) {
            let weight = shapes[2 * l], bias = shapes[2 * l + 1]
            guard weight.count == 2, bias == [weight[0]] else { return nil }
            if l == 0 { widths.append(weight[1]) } else if widths.last != weight[1] { return nil }
            widths.append(weight[0])
        }
        return MLPArchitecture(inputs: widths[0], hidden: Array(widths[1..<(widths.count - 1)]),
                               outputs: widths.last!, activation: activation)
    }
}

/// The values a forward pass keeps for the backward pass.
public struct ForwardPass<S: TrainingScalar> {
    public let batch: Int
    /// inputs[l]: the [batch × in] input of layer l (inputs[0] is the features).
    public var inputs: [[S]]
    /// preActivations[l]: the [batch × out] z of hidden layer l.
    public var preActivations: [[S]]
    /// [batch × outputs].
    public var logits: [S]
}

/// Forward and backward passes over a batch, row-major, with BLAS products.
public enum MLPNetwork {
    public static func forward<S: TrainingScalar>(_ architecture: MLPArchitecture, parameters: [[S]],
                                                  features: [S], batch: Int) -> ForwardPass<S> {
        precondition(features.count == batch * architecture.inputs)
        var inputs: [[S]] = [features]
        var preActivations: [[S]] = []
        var current = features
        for l in 0..<architecture.layerCount {
            let (out, input) = architecture.layerShape(l)
            var z = [S](repeating: 0, count: batch * out)
            let weight = parameters[2 * l], bias = parameters[2 * l + 1]
            // z = a W^T + b: seed each row with the bias, then accumulate the product.
            z.withUnsafeMutableBufferPointer { zb in
                bias.withUnsafeBufferPointer { bb in
                    for row in 0..<batch {
                        (zb.baseAddress! + row * out).update(from: bb.baseAddress!, count: out)
                    }
                }
                current.withUnsafeBufferPointer { ab in
                    weight.withUnsafeBufferPointer { wb in
                        S.gemm(transposeA: false, transposeB: true, m: batch, n: out, k: input,
                               ab.baseAddress!, lda: input, wb.baseAddress!, ldb: input, beta: 1,
                               zb.baseAddress!, ldc: out)
                    }
                }
            }
            if l < architecture.hidden.count {
                preActivations.append(z)
                current = MLPNetwork.activate(architecture.activation, z)
                inputs.append(current)
            } else {
                current = z
            }
        }
        return ForwardPass(batch: batch, inputs: inputs, preActivations: preActivations, logits: current)
    }

    /// Gradients of a loss with respect to every parameter, given dLoss/dlogits.
    public static func backward<S: TrainingScalar>(_ architecture: MLPArchitecture, parameters: [[S]],
                                                   pass: ForwardPass<S>, logitGradient: [S]) -> [[S]] {
        let batch = pass.batch
        var gradients = [[S]](repeating: [], count: 2 * architecture.layerCount)
        var upstream = logitGradient
        for l in stride(from: architecture.layerCount - 1, through: 0, by: -1) {
            let (out, input) = architecture.layerShape(l)
            // dW = dz^T a, db = column sums of dz (rows added in order).
            var weightGradient = [S](repeating: 0, count: out * input)
            var biasGradient = [S](repeating: 0, count: out)
            upstream.withUnsafeBufferPointer { dz in
                pass.inputs[l].withUnsafeBufferPointer { a in
                    weightGradient.withUnsafeMutableBufferPointer { dw in
                        S.gemm(transposeA: true, transposeB: false, m: out, n: input, k: batch,
                               dz.baseAddress!, lda: out, a.baseAddress!, ldb: input, beta: 0,
                               dw.baseAddress!, ldc: input)
                    }
                }
                biasGradient.withUnsafeMutableBufferPointer { db in
                    let sums = db.baseAddress!, rows = dz.baseAddress!
                    for row in 0..<batch {
                        let values = rows + row * out
                        for j in 0..<out { sums[j] += values[j] }
                    }
                }
            }
            gradients[2 * l] = weightGradient
            gradients[2 * l + 1] = biasGradient
            guard l > 0 else { break }
            // da = dz W, then through the activation of the layer below.
            var inputGradient = [S](repeating: 0, count: batch * input)
            upstream.withUnsafeBufferPointer { dz in
                parameters[2 * l].withUnsafeBufferPointer { w in
                    inputGradient.withUnsafeMutableBufferPointer { da in
                        S.gemm(transposeA: false, transposeB: false, m: batch, n: input, k: out,
                               dz.baseAddress!, lda: out, w.baseAddress!, ldb: input, beta: 0,
                               da.baseAddress!, ldc: input)
                    }
                }
            }
            MLPNetwork.multiplyByDerivative(architecture.activation, &inputGradient, pass.preActivations[l - 1])
            upstream = inputGradient
        }
        return gradients
    }

    /// activation(z) elementwise.
    static func activate<S: TrainingScalar>(_ activation: Activation, _ z: [S]) -> [S] {
        var result = z
        result.withUnsafeMutableBufferPointer { buffer in
            let values = buffer.baseAddress!
            switch activation {
            case .relu: S.reluInPlace(values, buffer.count)
            case .gelu: for i in 0..<buffer.count { values[i] = Activation.gelu.apply(values[i]) }
            }
        }
        return result
    }

    /// gradient *= activation'(z) elementwise.
    static func multiplyByDerivative<S: TrainingScalar>(_ activation: Activation, _ gradient: inout [S], _ z: [S]) {
        gradient.withUnsafeMutableBufferPointer { buffer in
            z.withUnsafeBufferPointer { zBuffer in
                let g = buffer.baseAddress!, pre = zBuffer.baseAddress!
                switch activation {
                case .relu: S.keepWherePositive(g, pre, buffer.count)
                case .gelu: for i in 0..<buffer.count { g[i] *= Activation.gelu.derivative(pre[i]) }
                }
            }
        }
    }

    /// The index of the largest logit of each row (the first on ties).
    public static func greedyActions<S: TrainingScalar>(_ logits: [S], classes: Int) -> [Int] {
        stride(from: 0, to: logits.count, by: classes).map { start in
            var best = 0
            for j in 1..<classes where logits[start + j] > logits[start + best] { best = j }
            return best
        }
    }
}
