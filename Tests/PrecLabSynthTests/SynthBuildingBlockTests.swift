import XCTest
@testable import PrecLabSynth

final class SynthBuildingBlockTests: XCTestCase {
    // MARK: the master update rule

    func testAdvanceMasterByHand() {
        let cases: [(before: Float, proposed: Float, after: Float, recorded: Float)] = [
            (1.0, 1e-9, 1.0, 0),                                    // below half an ULP: lost
            (1.0, 0x1p-24, 1.0, 0),                                 // exact tie: to even
            (1.0, 0x1.8p-24, 1.0 + 0x1p-23, 0x1p-23),               // above the tie
            (1.0, -1.0, 0.0, -1.0),
            (0x1p-149, 0x1p-149, 0x1p-148, 0x1p-149),               // subnormals
            (1e-30, 1.0, 1.0, 1.0),                                 // |step| >> |w|
            (3.0, -3.5, -0.5, -3.5),                                // crosses zero
            (-2.0, 0x1p-22, -2.0 + 0x1p-22, 0x1p-22),
        ]
        for item in cases {
            let (after, recorded) = advanceMaster(item.before, by: item.proposed)
            XCTAssertEqual(after.bitPattern, item.after.bitPattern, "\(item)")
            XCTAssertEqual(recorded.bitPattern, item.recorded.bitPattern, "\(item)")
        }
        // Signed zeros: -0 + +0 is +0 under round-to-nearest.
        let zero = advanceMaster(-0.0, by: 0.0)
        XCTAssertEqual(zero.after.bitPattern, Float(0).bitPattern)
        XCTAssertEqual(zero.recorded.bitPattern, Float(0).bitPattern)
    }

    func testAdvanceMasterKeepsBothStreamRulesOnRandomPairs() {
        var state: UInt64 = 12345
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            return CounterRandom.mix(state)
        }
        func randomFloat() -> Float {
            let bits = next()
            let exponent = Int(bits % 200) - 140                   // 2^-140 ... 2^59
            let mantissa = Float(bits >> 40) / Float(1 << 24) + 1
            let value = Float(sign: bits & (1 << 20) == 0 ? .plus : .minus, exponent: exponent, significand: mantissa)
            return value
        }
        for _ in 0 ..< 200_000 {
            let before = randomFloat(), proposed = randomFloat()
            let (after, recorded) = advanceMaster(before, by: proposed)
            XCTAssertEqual((after - before).bitPattern, recorded.bitPattern)
            XCTAssertEqual((before + recorded).bitPattern, after.bitPattern)
        }
    }

    // MARK: random numbers

    func testSplitMixOutputMatchesTheReferenceSequence() {
        // SplitMix64 seeded with 0: first outputs 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4
        // (the published sequence of Steele et al.'s generator).
        XCTAssertEqual(CounterRandom.mix(0x9E37_79B9_7F4A_7C15), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(CounterRandom.mix(0x9E37_79B9_7F4A_7C15 &* 2), 0x6E78_9E6A_A1B9_65F4)
    }

    func testKeysDependOnEveryCoordinate() {
        let reference = CounterRandom(seed: 1, tensor: 0, purpose: .gradientNoise, step: 1).key
        XCTAssertNotEqual(reference, CounterRandom(seed: 2, tensor: 0, purpose: .gradientNoise, step: 1).key)
        XCTAssertNotEqual(reference, CounterRandom(seed: 1, tensor: 1, purpose: .gradientNoise, step: 1).key)
        XCTAssertNotEqual(reference, CounterRandom(seed: 1, tensor: 0, purpose: .signalLeft, step: 1).key)
        XCTAssertNotEqual(reference, CounterRandom(seed: 1, tensor: 0, purpose: .gradientNoise, step: 2).key)
    }

    func testFillGaussianMatchesElementwiseValuesForAnyRange() {
        let random = CounterRandom(seed: 9, tensor: 2, purpose: .gradientNoise, step: 3)
        for range in [0 ..< 10, 1 ..< 10, 3 ..< 4, 4 ..< 5, 5 ..< 12, 7 ..< 7] {
            var output = [Float](repeating: .nan, count: range.count)
            output.withUnsafeMutableBufferPointer {
                if let base = $0.baseAddress { random.fillGaussian(base, elements: range, scale: 0.5) }
            }
            for (position, index) in range.enumerated() {
                XCTAssertEqual(output[position], Float(0.5 * random.gaussian(index)), "\(range) \(index)")
            }
        }
    }

    func testGaussianMoments() {
        let random = CounterRandom(seed: 4, tensor: 0, purpose: .gradientNoise, step: 1)
        let n = 200_000
        var sum = 0.0, sumOfSquares = 0.0, fourth = 0.0, withinOne = 0
        for i in 0 ..< n {
            let x = random.gaussian(i)
            sum += x; sumOfSquares += x * x; fourth += x * x * x * x
            if abs(x) < 1 { withinOne += 1 }
        }
        let mean = sum / Double(n)
        // Five standard errors: mean 1/sqrt(n), variance sqrt(2/n), E x^4 = 3 with sd sqrt(96/n).
        XCTAssertEqual(mean, 0, accuracy: 5 / Double(n).squareRoot())
        XCTAssertEqual(sumOfSquares / Double(n), 1, accuracy: 5 * (2 / Double(n)).squareRoot())
        XCTAssertEqual(fourth / Double(n), 3, accuracy: 5 * (96 / Double(n)).squareRoot())
        // P(|x| < 1) = erf(1/sqrt 2) = 0.682689...
        XCTAssertEqual(Double(withinOne) / Double(n), 0.682689, accuracy: 5 * (0.2167 / Double(n)).squareRoot())
    }

    // MARK: factors and rounding

    func testRandomOrthogonalColumnsAreOrthonormal() throws {
        let (rows, columns) = (30, 12)
        let q = try RandomOrthogonal.columns(rows: rows, columns: columns,
                                             random: CounterRandom(seed: 1, tensor: 0, purpose: .baseLeftFactor))
        for a in 0 ..< columns {
            for b in 0 ..< columns {
                var dot = 0.0
                for r in 0 ..< rows { dot += q[a * rows + r] * q[b * rows + r] }
                XCTAssertEqual(dot, a == b ? 1 : 0, accuracy: 1e-13)
            }
        }
    }

    func testRoundToBFloat16TiesToEven() {
        let cases: [(UInt32, UInt32)] = [
            (0x3F80_8000, 0x3F80_0000),  // 1 + 2^-8: tie, down to even
            (0x3F81_8000, 0x3F82_0000),  // tie, up to even
            (0x3F80_8001, 0x3F81_0000),  // just above the tie
            (0x3F80_7FFF, 0x3F80_0000),  // just below
            (0xBF80_C000, 0xBF81_0000),  // negative, above the tie
            (0x0000_0001, 0x0000_0000),  // smallest subnormal
            (0x8000_0000, 0x8000_0000),  // -0
        ]
        for (input, expected) in cases {
            XCTAssertEqual(roundToBFloat16(Float(bitPattern: input)).bitPattern, expected,
                           String(input, radix: 16))
        }
    }
}
