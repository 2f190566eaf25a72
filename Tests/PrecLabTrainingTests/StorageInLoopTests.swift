import XCTest
import PrecLabFormats
import PrecLabReplay
@testable import PrecLabTraining

/// The storage policies inside the training loop.
final class StorageInLoopTests: XCTestCase {
    /// bf16 has 7 stored mantissa bits: at 1.0 the ULP is 2^-7 and half an ULP 2^-8.
    func testPureUpdateBelowHalfULPLeavesTheWeightAndTheForwardCopyUnchanged() {
        let storage = WeightStorage(initial: [[1, -2]], policy: .pure, format: .bf16)
        let below: Float = 1 + 0x1p-9           // a quarter ULP above 1
        let effect = storage.apply(step: 1, newWeights: [[below, -2 - 0x1p-8]])  // -2: ULP 2^-6
        XCTAssertEqual(storage.forwardWeights[0][0].bitPattern, Float(1).bitPattern)
        XCTAssertEqual(storage.forwardWeights[0][1].bitPattern, Float(-2).bitPattern)
        XCTAssertEqual(effect.nonZeroUpdates, 2)
        XCTAssertEqual(effect.vanished, 2)
        XCTAssertEqual(storage.visibleCounts(), [0])
        // Above half an ULP (3/4 ULP) the update lands: 1 + 2^-7.
        storage.apply(step: 2, newWeights: [[1 + 0x1p-8 + 0x1p-9, -2]])
        XCTAssertEqual(storage.forwardWeights[0][0], 1 + 0x1p-7)
        XCTAssertEqual(storage.visibleCounts(), [1])
    }

    /// The same sub-half-ULP updates accumulate in master storage until the forward copy moves.
    func testMasterAccumulatesWhatPureLoses() {
        let pure = WeightStorage(initial: [[1]], policy: .pure, format: .bf16)
        let master = WeightStorage(initial: [[1]], policy: .master, format: .bf16)
        for step in 1...3 {
            for storage in [pure, master] {
                storage.apply(step: UInt64(step), newWeights: [[storage.optimizerWeights[0][0] + 0x1p-9]])
            }
        }
        XCTAssertEqual(pure.forwardWeights[0][0], 1)
        XCTAssertEqual(master.optimizerWeights[0][0], 1 + 3 * 0x1p-9)
        XCTAssertEqual(master.forwardWeights[0][0], 1 + 0x1p-7)      // nearest bf16 of 1.005859375
    }

    /// The forward pass of a pure-storage trainer uses the stored (rounded) weights.
    func testForwardPassSeesStoredValues() {
        let task = ModularAdditionTask(bits: 2)
        let architecture = MLPArchitecture(inputs: 4, hidden: [8, 8], outputs: 4, activation: .relu)
        let initial = architecture.initialParameters(seed: 1)
        var configuration = TrainingConfiguration()
        configuration.storage = .pure
        configuration.format = .bf16
        let trainer = Trainer(configuration: configuration, architecture: architecture, task: task,
                              initialWeights: initial)
        let rounded = initial.map { tensor in tensor.map { FloatFormat.bf16.decodeFloat(FloatFormat.bf16.encode($0)) } }
        XCTAssertEqual(trainer.storage.forwardWeights, rounded)
        XCTAssertNotEqual(rounded, initial)
        let prompts = task.evaluationSet(seed: 0)
        XCTAssertEqual(trainer.evaluate(), Trainer.accuracy(architecture, rounded, task, prompts))
    }

    /// Stochastic rounding: each element's bits come from StochasticKey(seed, tensor, step)
    /// at its index, so the result depends on the seed and not on the thread count.
    func testStochasticIsSeededAndThreadIndependent() {
        let count = 200_000   // several array-kernel chunks of 65536
        var random = SplitMix64(state: 5)
        let base = (0..<count).map { _ in Float(random.nextUniform() + 0.5) }
        let step = base.map { $0 + Float(random.nextUniform()) * 0x1p-10 }
        func run(seed: UInt64, threads: Int) -> [UInt8] {
            let storage = WeightStorage(initial: [base], policy: .stochastic, format: .bf16, seed: seed, threads: threads)
            storage.apply(step: 3, newWeights: [step])
            return storage.codes[0]
        }
        let one = run(seed: 9, threads: 1)
        XCTAssertEqual(one, run(seed: 9, threads: 2))
        XCTAssertEqual(one, run(seed: 9, threads: 7))
        XCTAssertNotEqual(one, run(seed: 10, threads: 2))
        // Independently: element i is the scalar stochastic rounding of (stored base + update)
        // with key.randomBits(index: i).
        let key = StochasticKey(seed: 9, stream: 0, step: 3)
        var options = RoundingOptions()
        options.mode = .stochastic
        for i in stride(from: 0, to: count, by: 997) {
            let stored = FloatFormat.bf16.decodeFloat(FloatFormat.bf16.encode(base[i]))
            let sum = stored + (step[i] - stored)
            let expected = FloatFormat.bf16.encode(sum, options, random: key.randomBits(index: i))
            let code = UInt32(one[2 * i]) | UInt32(one[2 * i + 1]) << 8
            XCTAssertEqual(code, expected, "element \(i)")
        }
    }

    /// Kahan storage keeps the lost part: sub-half-ULP steps add up in the compensation
    /// buffer and reach the weight, which pure storage never does.
    func testKahanRecoversAccumulatedSmallUpdates() {
        let kahan = WeightStorage(initial: [[1]], policy: .kahan, format: .bf16)
        for step in 1...4 {
            kahan.apply(step: UInt64(step), newWeights: [[kahan.optimizerWeights[0][0] + 0x1p-9]])
        }
        XCTAssertEqual(kahan.forwardWeights[0][0], 1 + 0x1p-7)
    }
}
