import XCTest
@testable import PrecLabFormats
@testable import PrecLabReplay
import PrecLabSupport

/// Cases whose answers follow from the rounding rules by hand (docs/formats.md, docs/replay.md).
final class HandComputedReplayTests: XCTestCase {
    private func stored(_ result: ReplayResult, _ policy: ReplayPolicy) -> Int {
        result.tensors[0].policies[policy]!.visibleChanged
    }

    /// w = 1.0 in bf16 plus 1e-3 a thousand times. An update of 1e-3 is below half an
    /// ULP of 1.0 (2^-8 = 0.0039), so pure nearest-even storage never moves; the fp32
    /// master accumulates to 2.0000467 whose bf16 export is 2.0; Kahan storage carries
    /// the lost parts and reaches 2.0.
    func testOnePlusOneThousandthThousandTimes() throws {
        let updates = [Float](repeating: 1e-3, count: 1000)
        var expectedTruth: Float = 1
        for update in updates { expectedTruth += update }
        XCTAssertEqual(expectedTruth, 2.0000467, accuracy: 1e-7)  // fp32 sum of 1000 roundings of 1e-3

        let engine = try makeEngine(base: [1], policies: ReplayPolicy.allCases)
        for (step, update) in updates.enumerated() {
            try [update].withUnsafeBufferPointer {
                try engine.apply(step: UInt64(step + 1), delta: $0, recordCurvePoint: false)
            }
        }
        let core = try XCTUnwrap((engine as ReplayEngine).testingCore as? TypedReplayCore<BFloat16Codec>)
        XCTAssertEqual(core.truth[0].bitPattern, expectedTruth.bitPattern)
        XCTAssertEqual(core.finalCode(.master, 0), 0x4000)       // bf16(2.0000467) = 2.0
        XCTAssertEqual(core.pure![0], 0x3F80)                      // swamped: still 1.0
        XCTAssertEqual(core.kahanWeights![0], 0x4000)              // compensated: 2.0

        let result = engine.finish()
        let tensor = result.tensors[0]
        XCTAssertEqual(tensor.trueChanged, 1)
        XCTAssertEqual(tensor.policies[.master]!.visibleChanged, 1)
        XCTAssertEqual(tensor.policies[.pure]!.visibleChanged, 0)
        XCTAssertEqual(tensor.policies[.pure]!.hidden, 1)
        XCTAssertEqual(tensor.policies[.kahan]!.visibleChanged, 1)
        XCTAssertEqual(tensor.policies[.fp32]!.relativeError, 0)
        // pure lost the whole update: |0 - 1.0000467| / 1.0000467 = 1.
        XCTAssertEqual(tensor.policies[.pure]!.relativeError, 1, accuracy: 0)
    }

    /// Stochastic rounding is unbiased: over seeds the same run averages about 2.0
    /// (the expected value of each rounding is the exact sum). 32 seeds; the per-run spread is a few ULPs of 2^-7,
    /// so the mean is within 0.05 with a wide margin.
    func testStochasticRoundingAveragesNearTwo() throws {
        var sum = 0.0
        var finals: Set<UInt16> = []
        for seed in 0..<32 {
            let engine = try makeEngine(base: [1], policies: [.stochastic], seed: UInt64(seed))
            for step in 1...1000 {
                try [Float(1e-3)].withUnsafeBufferPointer {
                    try engine.apply(step: UInt64(step), delta: $0, recordCurvePoint: false)
                }
            }
            let core = try XCTUnwrap(engine.testingCore as? TypedReplayCore<BFloat16Codec>)
            let code = core.stochastic![0]
            finals.insert(code)
            sum += Double(FloatFormat.bf16.decode(UInt32(code)))
        }
        XCTAssertEqual(sum / 32, 2.0, accuracy: 0.05)
        XCTAssertGreaterThan(finals.count, 1, "different seeds must give different runs")
    }

    /// At a power of two the step toward zero needs only half the threshold: from 1.0
    /// (ULP 2^-7 above, 2^-8 below) +Δ is visible only for Δ > 2^-8, -Δ for Δ > 2^-9.
    func testPowerOfTwoAsymmetry() throws {
        let half = Float(1) / 256        // 2^-8
        let quarter = Float(1) / 512     // 2^-9
        let cases: [(Float, Bool)] = [
            (half, false),                       // tie to even: stays 0x3F80
            (half + Float(1) / 8_388_608, true),   // 2^-8 + 2^-23: 1 + Δ is above the midpoint in fp32
            (1.5 * quarter, false),              // up: below the 2^-8 threshold
            (-quarter, false),                   // tie below 1.0: even code 0x3F80 wins
            (-(quarter + Float(1) / 16_777_216), true),  // 2^-9 + 2^-24: below the midpoint in fp32
            (-1.5 * quarter, true),              // down: above the 2^-9 threshold
        ]
        // Δ just above a threshold must survive the fp32 sum: half.nextUp would not
        // (1 + 2^-8 + 2^-31 rounds to the midpoint 1 + 2^-8 in fp32, then ties to even).
        XCTAssertEqual(Float(1) + half.nextUp, 1 + half)
        for (update, visible) in cases {
            let result = try replayScalar(1, updates: [update])
            // (Kahan storage first rounds Δ itself into a bf16 buffer, which drops the
            // 2^-23 part, so its single-step threshold differs; it is checked elsewhere.)
            for policy in [ReplayPolicy.master, .pure] {
                XCTAssertEqual(stored(result, policy), visible ? 1 : 0, "update \(update) policy \(policy)")
            }
        }
    }

    /// PyTorch's add_ forms the sum in fp32 first: Δ = 0x3B80006B makes 1 + Δ round to
    /// the bf16 midpoint 1.00390625 in fp32, which then ties to even (1.0). Rounding the
    /// exact sum once would give 0x3F81.
    func testDoubleRoundingFollowsPyTorch() throws {
        let delta = Float(bitPattern: 0x3B80_006B)
        XCTAssertEqual((Float(1) + delta), 1.00390625)  // the fp32 sum is the midpoint
        XCTAssertGreaterThan(1.0 + Double(delta), 1.00390625)  // the exact sum is above it
        let result = try replayScalar(1, updates: [delta])
        XCTAssertEqual(stored(result, .pure), 0)
        XCTAssertEqual(result.tensors[0].policies[.pure]!.hidden, 1)
        XCTAssertEqual(result.tensors[0].trueChanged, 1)
    }

    /// A step of exactly half an ULP ties to even: from an even code it stays, from an
    /// odd code it moves to the even neighbour above.
    func testHalfULPStepForEvenAndOddCodes() throws {
        let halfULP = Float(1) / 256  // half of 2^-7, the ULP in [1, 2)
        let even = Float(bitPattern: 0x3F80_0000)   // 1.0, code 0x3F80
        let odd = Float(bitPattern: 0x3F81_0000)    // 1.0078125, code 0x3F81
        XCTAssertEqual(stored(try replayScalar(even, updates: [halfULP]), .pure), 0)
        XCTAssertEqual(stored(try replayScalar(even, updates: [-halfULP / 2]), .pure), 0)
        let fromOdd = try makeEngine(base: [odd], policies: [.pure])
        try [halfULP].withUnsafeBufferPointer { try fromOdd.apply(step: 1, delta: $0, recordCurvePoint: false) }
        let core = try XCTUnwrap(fromOdd.testingCore as? TypedReplayCore<BFloat16Codec>)
        XCTAssertEqual(core.pure![0], 0x3F82)
        let down = try makeEngine(base: [odd], policies: [.pure])
        try [-halfULP].withUnsafeBufferPointer { try down.apply(step: 1, delta: $0, recordCurvePoint: false) }
        XCTAssertEqual((down.testingCore as! TypedReplayCore<BFloat16Codec>).pure![0], 0x3F80)
    }

    func testFinalMismatchNamesTheFirstDifferingElement() throws {
        let tensors = [ReplayTensor(name: "a", shape: [2]), ReplayTensor(name: "layer.w", shape: [2, 3])]
        let base: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]
        let update: [Float] = [0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25]
        let engine = try makeEngine(base: base, tensors: tensors, policies: [.fp32])
        try update.withUnsafeBufferPointer { try engine.apply(step: 7, delta: $0, recordCurvePoint: false) }
        var final = zip(base, update).map { $0 + $1 }
        try final.withUnsafeBufferPointer { try engine.verifyFinal($0) }
        final[6] = final[6].nextUp
        XCTAssertThrowsError(try final.withUnsafeBufferPointer { try engine.verifyFinal($0) }) { error in
            let message = (error as? PrecLabError)?.description ?? ""
            XCTAssertTrue(message.contains("'layer.w'"), message)
            XCTAssertTrue(message.contains("[1, 1] (flat 4)"), message)
            XCTAssertEqual((error as? PrecLabError)?.isDataError, true)
        }
    }

    func testNaNAndInfinityInUpdatesAreCountedAndWarned() throws {
        let tensors = [ReplayTensor(name: "w", shape: [4])]
        let updates: [[Float]] = [[.nan, 0, 0, 0], [0, .infinity, 0, -.infinity], [0, 0, 0, 0]]
        let result = try replay(tensors: tensors, base: [1, 1, 1, 1], updates: updates)
        XCTAssertEqual(result.tensors[0].nanUpdates, 1)
        XCTAssertEqual(result.tensors[0].infiniteUpdates, 2)
        XCTAssertTrue(result.warnings.contains { $0.contains("1 NaN, 2 Inf") }, "\(result.warnings)")
        // NaN and ±Inf weights are non-finite under every policy.
        XCTAssertEqual(result.tensors[0].policies[.master]!.nonFiniteWeights, 3)
        XCTAssertEqual(result.tensors[0].policies[.pure]!.nonFiniteWeights, 3)
    }

    /// |ΔW_true| / half-ULP(stored base) lands in the expected octave.
    func testVisibilityHistogramBins() throws {
        // w0 = 1.0: half-ULP is 2^-8. Updates 2^-9 (ratio 1/2), 3·2^-8 (ratio 3), 0.
        let tensors = [ReplayTensor(name: "w", shape: [3])]
        let result = try replay(tensors: tensors, base: [1, 1, 1],
                                updates: [[Float(1) / 512, 3 * Float(1) / 256, 0]])
        let labels = VisibilityHistogram.labels
        let histogram = result.tensors[0].histogram
        XCTAssertEqual(histogram[labels.firstIndex(of: "0")!], 1)
        XCTAssertEqual(histogram[labels.firstIndex(of: "2^-1")!], 1)
        XCTAssertEqual(histogram[labels.firstIndex(of: "2^1")!], 1)
        XCTAssertEqual(histogram.reduce(0, +), 3)
        let master = result.tensors[0].policies[.master]!
        XCTAssertEqual(master.visibleByBin[labels.firstIndex(of: "2^1")!], 1)
        XCTAssertEqual(master.visibleChanged, 1)
    }

    func testLowMagnitudeOverlapCountsTheSmallestWeights() throws {
        // Ten weights of increasing magnitude; the same absolute update is visible only
        // on the four smallest (|w| <= 2^-3 with an update of 2^-10 > half-ULP 2^-12..).
        let base: [Float] = [-0.0625, 0.0625, 0.125, -0.125, 0.5, 1, 2, 4, 8, 16]
        let update = [Float](repeating: Float(1) / 1024, count: 10)
        let tensors = [ReplayTensor(name: "w", shape: [10])]
        let result = try replay(tensors: tensors, base: base, updates: [update], policies: [.fp32, .master])
        let master = result.tensors[0].policies[.master]!
        XCTAssertEqual(master.visibleChanged, 4)
        let alphas = result.configuration.lowMagnitudeAlphas
        for (index, alpha) in alphas.enumerated() {
            let cut = LowMagnitudeMask.size(alpha: alpha, count: 10)
            XCTAssertEqual(master.visibleInLowMagnitude[index], min(cut, 4), "alpha \(alpha)")
        }
    }

    func testLowMagnitudeMaskSizeAndTies() {
        XCTAssertEqual(LowMagnitudeMask.size(alpha: 0.5, count: 5), 3)   // 2.5 rounds away
        XCTAssertEqual(LowMagnitudeMask.size(alpha: 0.25, count: 10), 3) // 2.5 rounds away
        XCTAssertEqual(LowMagnitudeMask.size(alpha: 0.24, count: 10), 2)
        XCTAssertEqual(LowMagnitudeMask.size(alpha: 1, count: 7), 7)
        let values: [Float] = [3, -1, 1, 0, -0.0, .nan, .infinity, 2]
        XCTAssertEqual(LowMagnitudeMask.order(count: values.count) { values[$0] }, [3, 4, 1, 2, 7, 0, 6, 5])
    }

    private func makeEngine(base: [Float], tensors: [ReplayTensor]? = nil,
                            policies: [ReplayPolicy], seed: UInt64 = 0) throws -> ReplayEngine {
        let tensors = tensors ?? [ReplayTensor(name: "w", shape: [base.count])]
        let configuration = ReplayConfiguration(format: .bf16, seed: seed, policies: policies, threads: 2)
        return try base.withUnsafeBufferPointer {
            try ReplayEngine(tensors: tensors, base: $0, configuration: configuration)
        }
    }
}
