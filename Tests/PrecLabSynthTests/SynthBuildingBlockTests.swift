import Foundation
import XCTest
@testable import PrecLabSynth

/// Elements 0 ..< count of a random key, through the block filler.
private func gaussians(_ random: CounterRandom, count: Int) -> [Float] {
    var values = [Float](repeating: 0, count: count)
    values.withUnsafeMutableBufferPointer { random.fillGaussian($0.baseAddress!, elements: 0 ..< count, scale: 1) }
    return values
}

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
        for range in [0 ..< 10, 1 ..< 10, 3 ..< 4, 15 ..< 17, 5 ..< 40, 16 ..< 48, 7 ..< 7, 0 ..< 100] {
            var output = [Float](repeating: .nan, count: range.count)
            output.withUnsafeMutableBufferPointer {
                if let base = $0.baseAddress { random.fillGaussian(base, elements: range, scale: 0.75) }
            }
            for (position, index) in range.enumerated() {
                XCTAssertEqual(output[position].bitPattern, (Float(0.75) * random.gaussian(index)).bitPattern,
                               "\(range) \(index)")
            }
        }
    }

    /// Each value against the Box-Muller formula evaluated in float64 with libm, from
    /// the same bits: z = sqrt(−2 ln u)·cos(2πt) (lanes 0-7), ·sin(2πt) (lanes 8-15).
    func testGaussianValuesMatchBoxMullerInFloat64() {
        let random = CounterRandom(seed: 5, tensor: 1, purpose: .gradientNoise, step: 2)
        var worst = 0.0
        let values = gaussians(random, count: 50_000)
        for index in 0 ..< 50_000 {
            let lane = index & 15
            let bits = random.bits((index >> 4) * 8 + (lane & 7))
            let u = (Double(bits >> 41) + 0.5) / 8_388_608
            let t = Double(bits & 0xFF_FFFF) / 16_777_216
            let radius = (-2 * log(u)).squareRoot()
            let expected = lane < 8 ? radius * cos(2 * Double.pi * t) : radius * sin(2 * Double.pi * t)
            worst = max(worst, abs(Double(values[index]) - expected))
        }
        // fp32 rounding of values up to 5.8 is 2.4e-7 per operation; allow a few.
        XCTAssertLessThan(worst, 3e-6)
    }

    func testVectorLogarithmAndCosineSineAgainstLibm() {
        var worstLog = 0.0, worstTrig = 0.0
        for block in 0 ..< 25_000 {
            // u over (0, 1]: 2^-24 ... 1, dense near 1 and across binades; t over [0, 1).
            var u = SIMD8<Float>(), t = SIMD8<Float>()
            for lane in 0 ..< 8 {
                let k = block * 8 + lane
                u[lane] = Float((k % 100_000) + 1) / 100_000 * (k < 100_000 ? 1 : 0x1p-12)
                t[lane] = Float(k) / 200_000
            }
            let logValues = VectorMath.logarithm(u)
            let (c, s) = VectorMath.cosineSineOfTurns(t)
            for lane in 0 ..< 8 {
                let expectedLog = log(Double(u[lane]))
                worstLog = max(worstLog, abs(Double(logValues[lane]) - expectedLog) / max(1, abs(expectedLog)))
                let angle = 2 * Double.pi * Double(t[lane])
                worstTrig = max(worstTrig, abs(Double(c[lane]) - cos(angle)), abs(Double(s[lane]) - sin(angle)))
            }
        }
        XCTAssertLessThan(worstLog, 4e-7)
        XCTAssertLessThan(worstTrig, 4e-7)
        // Exact points: ln 1 = 0, ln 2^-k = −k ln 2; quarter turns.
        XCTAssertEqual(VectorMath.logarithm(SIMD8(repeating: 1))[0], 0)
        XCTAssertEqual(Double(VectorMath.logarithm(SIMD8(repeating: 0x1p-20))[0]), -20 * log(2.0), accuracy: 2e-6)
        let quarters = VectorMath.cosineSineOfTurns(SIMD8(0, 0.25, 0.5, 0.75, 0.125, 0.375, 0.625, 0.875))
        XCTAssertEqual(Array(quarters.cosine.indices.prefix(4).map { quarters.cosine[$0] }), [1, 0, -1, 0])
        XCTAssertEqual(Array(quarters.sine.indices.prefix(4).map { quarters.sine[$0] }), [0, 1, 0, -1])
        let half = Float(0.5).squareRoot()
        for lane in 4 ..< 8 {
            let signs: (Float, Float) = [(1, 1), (-1, 1), (-1, -1), (1, -1)][lane - 4]
            XCTAssertEqual(quarters.cosine[lane], signs.0 * half, accuracy: 2e-7)
            XCTAssertEqual(quarters.sine[lane], signs.1 * half, accuracy: 2e-7)
        }
    }

    func testVectorSquareRootAgainstFloat64() {
        // The Box-Muller radius range: −2 ln u for u in [2^-24, 1 − 2^-24] is 1.2e-7 ... 33.3.
        var worst = 0.0
        for block in 0 ..< 20_000 {
            var x = SIMD8<Float>()
            for lane in 0 ..< 8 {
                let k = Double(block * 8 + lane) / 160_000          // 0 ... 1
                x[lane] = Float(1.2e-7 * pow(33.3 / 1.2e-7, k))     // log-spaced
            }
            let root = VectorMath.squareRoot(x)
            for lane in 0 ..< 8 {
                let expected = Double(x[lane]).squareRoot()
                worst = max(worst, abs(Double(root[lane]) - expected) / expected)
            }
        }
        XCTAssertLessThan(worst, 4e-7)  // about 3 fp32 ULPs
        XCTAssertEqual(VectorMath.squareRoot(SIMD8(repeating: 4))[0], 2, accuracy: 4e-7)
    }

    func testGaussianMoments() {
        let random = CounterRandom(seed: 4, tensor: 0, purpose: .gradientNoise, step: 1)
        let n = 400_000
        let values = gaussians(random, count: n)
        var sum = 0.0, sumOfSquares = 0.0, fourth = 0.0, withinOne = 0
        for i in 0 ..< n {
            let x = Double(values[i])
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
