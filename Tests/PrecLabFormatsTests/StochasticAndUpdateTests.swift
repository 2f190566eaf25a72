import XCTest
@testable import PrecLabFormats

final class StochasticRoundingTests: XCTestCase {
    /// Rounds `x` with many different random draws (kernel, consecutive indices) and
    /// checks every result is one of the two neighbours and the frequency of the upper
    /// one is the fraction of the gap within 5 sigma.
    func checkFrequency(_ format: FloatFormat, low: Double, high: Double, fraction: Double,
                        draws: Int = 200_000, file: StaticString = #filePath, line: UInt = #line) {
        let x = Float(low + (high - low) * fraction)
        XCTAssertEqual(Double(x), low + (high - low) * fraction, "probe must be exact", file: file, line: line)
        let input = [Float](repeating: x, count: draws)
        var bytes = [UInt8](repeating: 0, count: draws * format.storageBytes)
        input.withUnsafeBufferPointer { source in
            bytes.withUnsafeMutableBytes {
                format.encode(source, into: $0, RoundingOptions(mode: .stochastic), key: StochasticKey(seed: 77, stream: 3))
            }
        }
        var decoded = [Float](repeating: 0, count: draws)
        bytes.withUnsafeBytes { raw in decoded.withUnsafeMutableBufferPointer { format.decode(raw, into: $0) } }
        var ups = 0
        for value in decoded {
            if Double(value) == high { ups += 1 } else if Double(value) != low {
                XCTFail("\(format): \(value) is not a neighbour of \(x)", file: file, line: line)
                return
            }
        }
        let frequency = Double(ups) / Double(draws)
        let sigma = (fraction * (1 - fraction) / Double(draws)).squareRoot()
        XCTAssertLessThan(abs(frequency - fraction), 5 * sigma,
                          "\(format) at \(fraction) of the gap: \(frequency)", file: file, line: line)
    }

    func testFrequenciesAtQuarterHalfThreeQuarters() {
        for fraction in [0.25, 0.5, 0.75] {
            checkFrequency(.bf16, low: 1, high: 1 + 0x1p-7, fraction: fraction)
            checkFrequency(.bf16, low: -3, high: -3 - 0x1p-6, fraction: fraction)
            checkFrequency(.fp16, low: 0x1p-24, high: 0x2p-24, fraction: fraction)  // subnormal gap
            checkFrequency(.e4m3fn, low: 448, high: 416, fraction: 1 - fraction)   // gap below max
            checkFrequency(.e2m1fn, low: 4, high: 6, fraction: fraction)
            checkFrequency(.e8m0fnu, low: 0.25, high: 0.5, fraction: fraction)
        }
    }

    func testExactValuesNeverMoveAndResolutionIs32Bits() {
        for format in [FloatFormat.bf16, .fp16, .e4m3fn, .e8m0fnu] {
            for random: UInt32 in [0, 1, 0x8000_0000, 0xFFFF_FFFF] {
                XCTAssertEqual(format.encode(Float(1), RoundingOptions(mode: .stochastic), random: random), format.encode(Float(1)))
            }
        }
        // Float -> bf16: F = low16 << 16; the value rounds up iff random < F.
        let x = Float(bitPattern: 0x3F80_4000)  // a quarter of the gap above 1
        let sr = RoundingOptions(mode: .stochastic)
        XCTAssertEqual(FloatFormat.bf16.encode(x, sr, random: 0x3FFF_FFFF), 0x3F81)
        XCTAssertEqual(FloatFormat.bf16.encode(x, sr, random: 0x4000_0000), 0x3F80)
        // More than 32 discarded bits: the fraction is truncated to 32 bits.
        let tiny = 0x1p-30 as Double  // 2^-23 of fp16's smallest subnormal gap... far below it
        XCTAssertEqual(FloatFormat.fp16.encode(tiny, sr, random: 0), 1)   // F = 2^-6 * 2^32 > 0
        XCTAssertEqual(FloatFormat.fp16.encode(tiny, sr, random: 1 << 26), 0)
    }

    func testStochasticKeyIsAPureFunction() {
        let key = StochasticKey(seed: 1, stream: 2, step: 3)
        XCTAssertEqual(key.randomBits(index: 12345), StochasticKey(seed: 1, stream: 2, step: 3).randomBits(index: 12345))
        XCTAssertNotEqual(key.randomBits(index: 0), key.randomBits(index: 1))
        XCTAssertNotEqual(key.randomBits(index: 0), StochasticKey(seed: 1, stream: 2, step: 4).randomBits(index: 0))
        XCTAssertNotEqual(key.randomBits(index: 0), StochasticKey(seed: 1, stream: 3, step: 3).randomBits(index: 0))
        // Roughly uniform: mean of many draws near 2^31.
        var sum = 0.0
        for i in 0..<100_000 { sum += Double(key.randomBits(index: i)) }
        XCTAssertEqual(sum / 100_000 / 0x1p32, 0.5, accuracy: 0.005)
    }
}

final class UpdateAndQueryTests: XCTestCase {
    func testPyTorchAddIsTwoRoundings() {
        let delta = Float(bitPattern: 0x3B80_006B)
        XCTAssertEqual(Float(1) + delta, 1.00390625)  // the fp32 sum is exactly the midpoint
        XCTAssertEqual(FloatFormat.bf16.add(stored: 0x3F80, delta: delta), 0x3F80)
        XCTAssertEqual(FloatFormat.bf16.encode(1 + Double(delta)), 0x3F81)  // single rounding differs
        XCTAssertFalse(FloatFormat.bf16.additionChangesBits(stored: 0x3F80, delta: delta))
    }

    func testSwallowRuleAtAPowerOfTwo() {
        let bf16 = FloatFormat.bf16
        XCTAssertFalse(bf16.additionChangesBits(stored: 0x3F80, delta: 0x1p-8))          // tie, even stays
        // The fp32 sum rounds first: 1 + (2^-8 + 2^-31) is 1 + 2^-8 in fp32, still a tie;
        // 2^-8 + 2^-24 is an fp32 tie that goes to even (1 + 2^-8); 2^-8 + 2^-23 survives.
        XCTAssertFalse(bf16.additionChangesBits(stored: 0x3F80, delta: Float(0x1p-8).nextUp))
        XCTAssertFalse(bf16.additionChangesBits(stored: 0x3F80, delta: 0x1p-8 + 0x1p-24))
        XCTAssertTrue(bf16.additionChangesBits(stored: 0x3F80, delta: 0x1p-8 + 0x1p-23))
        XCTAssertFalse(bf16.additionChangesBits(stored: 0x3F80, delta: -0x1p-9))         // tie toward zero
        XCTAssertTrue(bf16.additionChangesBits(stored: 0x3F80, delta: -(0x1p-9 + 0x1p-24)))
        XCTAssertFalse(bf16.additionChangesBits(stored: 0x3F80, delta: -(0x1p-9 + 0x1p-25)))
        XCTAssertEqual(bf16.halfULP(ofBits: 0x3F80), 0x1p-8)
        XCTAssertEqual(bf16.ulp(ofBits: 0x3F80), 0x1p-7)
        XCTAssertEqual(bf16.ulp(ofBits: 0x7F7F), 0x1p120)  // top binade spacing at max
        XCTAssertEqual(bf16.ulp(ofBits: 0x0001), 0x1p-133)
        XCTAssertTrue(bf16.ulp(ofBits: 0x7F80).isNaN)
        XCTAssertTrue(bf16.additionChangesBits(stored: 0x3F80, delta: 0x1p-8, RoundingOptions(mode: .up)))
        XCTAssertFalse(bf16.additionChangesBits(stored: 0x3F80, delta: 0x1p-8, RoundingOptions(mode: .towardZero)))
    }

    func testReferenceBehaviourOfOneThousandSmallUpdates() {
        let bf16 = FloatFormat.bf16
        var w: UInt32 = 0x3F80
        for _ in 0..<1000 { w = bf16.add(stored: w, delta: 1e-3) }
        XCTAssertEqual(w, 0x3F80)  // every update is swallowed
        // Stochastic rounding: unbiased, about 2 on average over seeds.
        var total = 0.0
        let seeds = 16
        for seed in 0..<seeds {
            let key = StochasticKey(seed: UInt64(seed))
            var v: UInt32 = 0x3F80
            for step in 0..<1000 {
                v = bf16.add(stored: v, delta: 1e-3, RoundingOptions(mode: .stochastic), random: key.randomBits(index: step))
            }
            total += bf16.decode(v)
        }
        XCTAssertEqual(total / Double(seeds), 2.0, accuracy: 0.03)
    }

    func testNextUpAndDown() {
        let fp16 = FloatFormat.fp16
        XCTAssertEqual(fp16.nextUp(0x0000), 0x0001)
        XCTAssertEqual(fp16.nextUp(0x8000), 0x0001)
        XCTAssertEqual(fp16.nextUp(0x8001), 0x8000)
        XCTAssertEqual(fp16.nextUp(0x7BFF), 0x7C00)
        XCTAssertEqual(fp16.nextUp(0x7C00), 0x7C00)
        XCTAssertEqual(fp16.nextUp(0xFC00), 0xFBFF)
        XCTAssertEqual(fp16.nextDown(0x0000), 0x8001)
        XCTAssertEqual(fp16.nextDown(0x0001), 0x0000)
        XCTAssertEqual(fp16.nextDown(0x3C00), 0x3BFF)
        XCTAssertEqual(fp16.nextUp(0x7E00), 0x7E00)  // NaN stays
        let fnuz = FloatFormat.e4m3fnuz
        XCTAssertEqual(fnuz.nextDown(0x00), 0x81)
        XCTAssertEqual(fnuz.nextUp(0x81), 0x00)
        XCTAssertEqual(fnuz.nextUp(0x7F), 0x7F)
        XCTAssertEqual(FloatFormat.e4m3fn.nextUp(0x7E), 0x7E)
        XCTAssertEqual(FloatFormat.e8m0fnu.nextUp(0x7F), 0x80)
        XCTAssertEqual(FloatFormat.e8m0fnu.nextDown(0x00), 0x00)
        XCTAssertEqual(FloatFormat.tf32.nextUp(0x3F80_0000), 0x3F80_2000)
        // Every code of e5m2: nextUp gives the next larger value of the sorted enumeration.
        let model = ReferenceFormat.model(.e5m2)
        let values = (model.values.reversed().map { -$0 } + model.values).filter { !($0 == 0 && $0.sign == .minus) }
        for (a, b) in zip(values, values.dropFirst()) where a != b {
            XCTAssertEqual(FloatFormat.e5m2.decode(FloatFormat.e5m2.nextUp(FloatFormat.e5m2.encode(a))), b)
            XCTAssertEqual(FloatFormat.e5m2.decode(FloatFormat.e5m2.nextDown(FloatFormat.e5m2.encode(b))), a)
        }
    }
}
