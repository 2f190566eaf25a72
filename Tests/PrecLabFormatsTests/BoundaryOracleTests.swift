import XCTest
@testable import PrecLabFormats

/// Per format and mode, both signs: inputs just below, at and just above every tie and
/// every boundary (largest finite, overflow threshold, smallest normal, smallest
/// subnormal and half of it), compared with the neighbour-search model.
final class BoundaryOracleTests: XCTestCase {
    static let optionVariants: [RoundingOptions] = RoundingMode.allCases.flatMap { mode in
        [RoundingOptions(mode: mode), RoundingOptions(mode: mode, flushSubnormals: true, saturate: true),
         RoundingOptions(mode: mode, saturate: true)]
    }
    static let randoms: [UInt32] = [0, 1, 0x3FFF_FFFF, 0x4000_0000, 0x7FFF_FFFF, 0x8000_0000, 0xBFFF_FFFF, 0xFFFF_FFFF]

    /// Probe magnitudes around the gap [lo, hi].
    static func probes(low: Double, high: Double) -> [Double] {
        let mid = (low + high) / 2
        let gap = high - low
        return [low, low.nextUp, mid.nextDown, mid, mid.nextUp, low + gap / 4, low + 3 * gap / 4,
                high.nextDown, low / 2, low * 1.5]
    }

    /// Pair indices to probe: all for small formats, the bottom and top binades plus a
    /// stride through the middle for the wide ones.
    static func pairIndices(count: Int) -> [Int] {
        if count <= 1024 { return Array(0..<count) }
        let edge = 600
        return Array(0..<edge) + Array(stride(from: edge, to: count - edge, by: 97)) + Array((count - edge)..<count)
    }

    func check(_ format: FloatFormat) {
        let model = ReferenceFormat.model(format)
        var failures = 0
        var checked = 0
        let values = model.values
        let top = values[values.count - 1]
        let topSpacing = format == .e8m0fnu ? top : top - values[values.count - 2]
        var gaps: [(Double, Double)] = BoundaryOracleTests.pairIndices(count: values.count - 1).map {
            (values[$0], values[$0 + 1])
        }
        gaps.append((top, top + topSpacing))                 // overflow threshold is the midpoint
        gaps.append((top + topSpacing, top + 2 * topSpacing))  // beyond it
        gaps.append((0, values[0] == 0 ? values[1] / 2 : values[0] / 2))  // half the smallest subnormal
        for (low, high) in gaps {
            for magnitude in BoundaryOracleTests.probes(low: low, high: high) where magnitude.isFinite {
                for negative in [false, true] {
                    let x = negative ? -magnitude : magnitude
                    let asFloat = Float(x)
                    let floatExact = Double(asFloat) == x
                    for options in BoundaryOracleTests.optionVariants {
                        let randoms = options.mode == .stochastic ? BoundaryOracleTests.randoms : [0]
                        for random in randoms {
                            checked += 1
                            let expected = model.round(x, options, random: random)
                            let got = format.encode(x, options, random: random)
                            var gotFloat = expected
                            if floatExact { gotFloat = format.encode(asFloat, options, random: random) }
                            if got != expected || gotFloat != expected {
                                failures += 1
                                if failures <= 8 {
                                    XCTFail("\(format) \(options.mode.rawValue) flush=\(options.flushSubnormals) "
                                        + "sat=\(options.saturate) x=\(x) (\(x.bitPattern)) random=\(random): expected "
                                        + "\(String(expected, radix: 16)) got \(String(got, radix: 16)) / float "
                                        + "\(String(gotFloat, radix: 16))")
                                }
                            }
                        }
                    }
                }
            }
        }
        XCTAssertEqual(failures, 0, "\(format): \(failures) of \(checked) probes differ")
    }

    func testEightBitAndSmallerFormats() {
        for format in FloatFormat.standard where format.bitWidth <= 8 { check(format) }
    }

    func testSixteenBitFormats() {
        check(.bf16)
        check(.fp16)
    }

    func testTF32AndCustomFormats() throws {
        check(.tf32)
        for name in ["e4m3", "e3m4", "e8m3", "e2m1", "e6m9"] { check(try FloatFormat.named(name)) }
    }

    func testSpecialInputs() {
        let nanBits: [UInt32] = [0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0xFF80_0001, 0x7FFF_FFFF, 0x7FA0_0000]
        for format in FloatFormat.standard where format != .fp32 {
            let model = ReferenceFormat.model(format)
            for options in BoundaryOracleTests.optionVariants {
                for bits in nanBits {
                    let negative = bits >> 31 == 1
                    let code = format.encode(Float(bitPattern: bits), options)
                    let codeD = format.encode(Double(Float(bitPattern: bits)), options)
                    if let nan = model.nan(negative: negative) {
                        XCTAssertTrue(format.isNaN(code), "\(format) NaN \(bits)")
                        XCTAssertTrue(format.isNaN(codeD), "\(format) NaN \(bits)")
                        // The sign and the quiet bit survive; the payload is not checked here.
                        let signMask: UInt32 = format.nanEncoding == .negativeZeroCode || !format.hasSignBit
                            ? 0 : (UInt32(1) << (format.bitWidth - 1)) << (format == .tf32 ? 13 : 0)
                        XCTAssertEqual(code & signMask, nan & signMask, "\(format) NaN sign")
                        XCTAssertFalse(format.isInfinite(code))
                    } else {
                        // fp6/fp4 have no NaN: ml_dtypes gives a zero of the opposite sign.
                        XCTAssertEqual(code, model.code(negative: !negative, magnitude: 0), "\(format)")
                    }
                }
                for negative in [false, true] {
                    let inf: Double = negative ? -.infinity : .infinity
                    XCTAssertEqual(format.encode(inf, options), model.round(inf, options), "\(format) \(inf)")
                    XCTAssertEqual(format.encode(Float(inf), options), model.round(inf, options), "\(format) \(inf)")
                    let zero: Double = negative ? -0.0 : 0.0
                    XCTAssertEqual(format.encode(zero, options), model.round(zero, options), "\(format) \(zero)")
                    XCTAssertEqual(format.encode(Float(zero), options), model.round(zero, options), "\(format) \(zero)")
                }
            }
        }
    }
}
