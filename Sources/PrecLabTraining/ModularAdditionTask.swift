/// The verifiable task: given a and b as bit vectors, answer (a + b) mod 2^bits.
///
/// `bits` is the difficulty knob: the answer has K = 2^bits classes and its top bit
/// depends on a carry chain through every lower bit. The reward of an answer is 1 when
/// it is correct and 0 otherwise, so it can be verified without a model.
public struct ModularAdditionTask: Sendable, Equatable {
    public let bits: Int

    public init(bits: Int) {
        precondition((1...12).contains(bits), "bits must be in 1...12")
        self.bits = bits
    }

    /// Number of answers (the policy's actions): 2^bits.
    public var classes: Int { 1 << bits }
    /// Input features: the bits of a then of b, least significant first.
    public var inputWidth: Int { 2 * bits }

    public struct Prompt: Sendable, Equatable {
        public var a: Int
        public var b: Int
        public init(a: Int, b: Int) { self.a = a; self.b = b }
    }

    public func answer(_ prompt: Prompt) -> Int { (prompt.a + prompt.b) & (classes - 1) }

    public func reward(_ prompt: Prompt, _ action: Int) -> Double { action == answer(prompt) ? 1 : 0 }

    /// Writes the encoding of a prompt: bit i of a at feature i, bit i of b at feature
    /// bits + i, each as +1 (set) or -1 (clear).
    public func encode<S: TrainingScalar>(_ prompt: Prompt, into features: UnsafeMutablePointer<S>) {
        for i in 0..<bits {
            features[i] = (prompt.a >> i) & 1 == 1 ? 1 : -1
            features[bits + i] = (prompt.b >> i) & 1 == 1 ? 1 : -1
        }
    }

    /// Row-major [count × inputWidth] features of a batch of prompts.
    public func encode<S: TrainingScalar>(_ prompts: [Prompt]) -> [S] {
        var features = [S](repeating: 0, count: prompts.count * inputWidth)
        features.withUnsafeMutableBufferPointer { buffer in
            for (row, prompt) in prompts.enumerated() { encode(prompt, into: buffer.baseAddress! + row * inputWidth) }
        }
        return features
    }

    /// The prompts of one training step: a and b uniform and independent, drawn from
    /// SplitMix64(seed, prompts, step), a then b for each prompt in turn.
    public func prompts(count: Int, seed: UInt64, step: UInt64) -> [Prompt] {
        var random = SplitMix64(seed: seed, purpose: .prompts, index: step)
        return (0..<count).map { _ in
            let a = random.nextBits(bits)
            return Prompt(a: a, b: random.nextBits(bits))
        }
    }

    /// The evaluation set: every pair when there are at most `limit`, else `limit`
    /// pairs drawn from SplitMix64(seed, evaluation, 0).
    public func evaluationSet(limit: Int = 4096, seed: UInt64) -> [Prompt] {
        let pairs = classes * classes
        if pairs <= limit {
            return (0..<pairs).map { Prompt(a: $0 / classes, b: $0 % classes) }
        }
        var random = SplitMix64(seed: seed, purpose: .evaluation, index: 0)
        return (0..<limit).map { _ in
            let a = random.nextBits(bits)
            return Prompt(a: a, b: random.nextBits(bits))
        }
    }
}
