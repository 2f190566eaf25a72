import XCTest
@testable import PrecLabFormats

/// The edge vectors of the rounding rules (docs/formats.md) and hand-derived facts about each format.
final class EdgeVectorTests: XCTestCase {
    func f(_ bits: UInt32) -> Float { Float(bitPattern: bits) }

    func testBF16EdgeVectors() {
        let bf16 = FloatFormat.bf16
        XCTAssertEqual(bf16.encode(f(0x7F7F_7FFF)), 0x7F7F)
        XCTAssertEqual(bf16.encode(f(0x7F7F_8000)), 0x7F80)  // rounds to Inf
        XCTAssertEqual(bf16.encode(Float(1) + 0x1p-8), 0x3F80)  // tie to even
        XCTAssertEqual(bf16.encode(Float(1) + 3 * 0x1p-8), 0x3F82)
        XCTAssertEqual(bf16.encode(Float.pi), 0x4049)
        XCTAssertEqual(bf16.encode(f(0x0001_8000)), 0x0002)  // subnormal tie to even
        // NaN is never turned into Inf by the rounding carry.
        XCTAssertEqual(bf16.encode(f(0x7F80_0001)), 0x7FC0)
        XCTAssertEqual(bf16.encode(f(0xFF80_0001)), 0xFFC0)
        XCTAssertEqual(bf16.encode(f(0x7FFF_FFFF)), 0x7FFF)
        XCTAssertEqual(bf16.encode(-Float.infinity), 0xFF80)
        XCTAssertEqual(bf16.encode(-Float(0)), 0x8000)
        // Same vectors through the Double path.
        XCTAssertEqual(bf16.encode(Double(f(0x7F7F_7FFF))), 0x7F7F)
        XCTAssertEqual(bf16.encode(Double(f(0x7F7F_8000))), 0x7F80)
        XCTAssertEqual(bf16.encode(1 + 0x1p-8 as Double), 0x3F80)
        XCTAssertEqual(bf16.encode(1 + 0x1p-8 + 0x1p-40 as Double), 0x3F81)
        XCTAssertEqual(bf16.encode(Double(f(0x0001_8000))), 0x0002)
    }

    func testFP16EdgeVectors() {
        let fp16 = FloatFormat.fp16
        XCTAssertEqual(fp16.encode(Float(65519.996)), 0x7BFF)
        XCTAssertEqual(fp16.encode(Float(65520)), 0x7C00)
        XCTAssertEqual(fp16.encode(Float(0x1p-25)), 0x0000)
        XCTAssertEqual(fp16.encode(Float(0x1p-25).nextUp), 0x0001)
        XCTAssertEqual(fp16.encode(-Float(0x1p-25)), 0x8000)
        XCTAssertEqual(fp16.encode(-Float(0x1p-25).nextUp), 0x8001)
        XCTAssertEqual(fp16.encode(Float(65520), RoundingOptions(saturate: true)), 0x7BFF)
        XCTAssertEqual(fp16.encode(Float(65520), RoundingOptions(mode: .towardZero)), 0x7BFF)
        XCTAssertEqual(fp16.encode(-Float(1e6), RoundingOptions(mode: .up)), 0xFBFF)
        XCTAssertEqual(fp16.encode(-Float(1e6), RoundingOptions(mode: .down)), 0xFC00)
        XCTAssertEqual(fp16.encode(Float.infinity, RoundingOptions(saturate: true)), 0x7C00)
    }

    func testFP8EdgeVectors() {
        let e4m3 = FloatFormat.e4m3fn
        XCTAssertEqual(e4m3.encode(Float(464)), 0x7E)
        XCTAssertEqual(e4m3.encode(Float(464).nextUp), 0x7F)
        XCTAssertEqual(e4m3.encode(Float(464).nextUp, RoundingOptions(saturate: true)), 0x7E)
        XCTAssertEqual(e4m3.encode(-Float(464).nextUp), 0xFF)
        XCTAssertEqual(e4m3.encode(Float.infinity), 0x7F)
        XCTAssertEqual(e4m3.encode(-Float.infinity), 0xFF)
        XCTAssertEqual(e4m3.encode(Float.infinity, RoundingOptions(saturate: true)), 0x7E)
        XCTAssertEqual(e4m3.encode(Float(0x1p-10)), 0x00)
        XCTAssertEqual(e4m3.encode(Float(1.5 * 0x1p-10)), 0x01)
        XCTAssertEqual(e4m3.encode(-Float(1.5 * 0x1p-10)), 0x81)
        XCTAssertEqual(e4m3.encode(Float(448)), 0x7E)
        XCTAssertEqual(e4m3.encode(Float.nan), 0x7F)

        let e5m2 = FloatFormat.e5m2
        XCTAssertEqual(e5m2.encode(Float(61439)), 0x7B)
        XCTAssertEqual(e5m2.encode(Float(61440)), 0x7C)
        XCTAssertEqual(e5m2.encode(-Float(61440)), 0xFC)
        XCTAssertEqual(e5m2.encode(Float(57344)), 0x7B)

        XCTAssertEqual(FloatFormat.e4m3fnuz.encode(-Float(0)), 0x00)
        XCTAssertEqual(FloatFormat.e4m3fnuz.encode(-Float(1e-9)), 0x00)
        XCTAssertEqual(FloatFormat.e4m3fnuz.encode(Float(240)), 0x7F)
        XCTAssertEqual(FloatFormat.e4m3fnuz.encode(Float(1000)), 0x80)
        XCTAssertEqual(FloatFormat.e4m3fnuz.encode(-Float.nan), 0x80)
        XCTAssertEqual(FloatFormat.e5m2fnuz.encode(Float(57344)), 0x7F)
        XCTAssertEqual(FloatFormat.e5m2fnuz.encode(-Float.infinity), 0x80)
    }

    func testSubByteAndScaleFormats() {
        // fp4 e2m1fn values: 0 0.5 1 1.5 2 3 4 6.
        let fp4 = FloatFormat.e2m1fn
        XCTAssertEqual(fp4.encode(Float(5)), 0x6)     // tie between 4 (0x6) and 6 (0x7): even
        XCTAssertEqual(fp4.encode(Float(2.5)), 0x4)   // tie between 2 (0x4) and 3 (0x5)
        XCTAssertEqual(fp4.encode(Float(0.25)), 0x0)  // tie between 0 and 0.5
        XCTAssertEqual(fp4.encode(Float(100)), 0x7)   // saturates (no Inf, no NaN)
        XCTAssertEqual(fp4.encode(-Float.infinity), 0xF)
        XCTAssertEqual(fp4.encode(Float.nan), 0x8)     // ml_dtypes: NaN -> zero of the other sign
        XCTAssertEqual(FloatFormat.e2m3fn.encode(Float(7.5)), 0x1F)
        XCTAssertEqual(FloatFormat.e2m3fn.encode(Float(7.75)), 0x1F)
        XCTAssertEqual(FloatFormat.e3m2fn.encode(Float(28)), 0x1F)
        XCTAssertEqual(FloatFormat.e3m2fn.encode(-Float(0)), 0x20)

        let scale = FloatFormat.e8m0fnu
        XCTAssertEqual(scale.encode(Float(1)), 0x7F)
        XCTAssertEqual(scale.encode(Float(3)), 0x81)    // tie rounds up (ml_dtypes)
        XCTAssertEqual(scale.encode(Float(1.5)), 0x80)
        XCTAssertEqual(scale.encode(Float(0)), 0xFF)
        XCTAssertEqual(scale.encode(-Float(2)), 0xFF)
        XCTAssertEqual(scale.encode(Float(0x1p-130)), 0x00)
        XCTAssertEqual(scale.encode(Float(0x1p127)), 0xFE)
        XCTAssertEqual(scale.encode(Float(0x1.8p127)), 0xFF)
        XCTAssertEqual(scale.encode(Float(0x1.8p127), RoundingOptions(saturate: true)), 0xFE)
        XCTAssertEqual(scale.decode(0x00), 0x1p-127)
        XCTAssertTrue(scale.decode(0xFF).isNaN)
    }

    func testFormatFacts() throws {
        XCTAssertEqual(FloatFormat.bf16.maxFinite, 3.3895313892515355e38)
        XCTAssertEqual(FloatFormat.fp16.maxFinite, 65504)
        XCTAssertEqual(FloatFormat.e5m2.maxFinite, 57344)
        XCTAssertEqual(FloatFormat.e4m3fn.maxFinite, 448)
        XCTAssertEqual(FloatFormat.e4m3fnuz.maxFinite, 240)
        XCTAssertEqual(FloatFormat.e5m2fnuz.maxFinite, 57344)
        XCTAssertEqual(FloatFormat.e2m3fn.maxFinite, 7.5)
        XCTAssertEqual(FloatFormat.e3m2fn.maxFinite, 28)
        XCTAssertEqual(FloatFormat.e2m1fn.maxFinite, 6)
        XCTAssertEqual(FloatFormat.e8m0fnu.maxFinite, 0x1p127)
        XCTAssertEqual(FloatFormat.fp32.maxFinite, Double(Float.greatestFiniteMagnitude))
        XCTAssertEqual(FloatFormat.fp16.minSubnormal, 0x1p-24)
        XCTAssertEqual(FloatFormat.fp16.minNormal, 0x1p-14)
        XCTAssertEqual(FloatFormat.e4m3fn.minSubnormal, 0x1p-9)
        XCTAssertEqual(FloatFormat.e4m3fnuz.minSubnormal, 0x1p-10)
        XCTAssertEqual(FloatFormat.tf32.storageBytes, 4)
        XCTAssertEqual(FloatFormat.tf32.bitWidth, 19)
        XCTAssertEqual(FloatFormat.e2m1fn.storageBytes, 1)
        XCTAssertEqual(FloatFormat.standard.count, 12)

        XCTAssertEqual(try FloatFormat.named("BFloat16"), .bf16)
        XCTAssertEqual(try FloatFormat.named("half"), .fp16)
        XCTAssertEqual(try FloatFormat.named("F8_E4M3"), .e4m3fn)
        XCTAssertEqual(try FloatFormat.named("fp8-e4m3"), .e4m3fn)
        XCTAssertEqual(try FloatFormat.named("float8_e4m3fn"), .e4m3fn)
        XCTAssertEqual(try FloatFormat.named("F4"), .e2m1fn)
        XCTAssertEqual(try FloatFormat.named("F8_E8M0"), .e8m0fnu)
        XCTAssertEqual(try FloatFormat.named("e5m10"), .fp16)
        XCTAssertEqual(try FloatFormat.named("e8m3").maxFinite, 0x1.Ep127)
        XCTAssertEqual(try FloatFormat.named("e4m3").maxFinite, 240)  // IEEE-like, as ml_dtypes float8_e4m3
        XCTAssertThrowsError(try FloatFormat.named("fp7"))
        XCTAssertThrowsError(try FloatFormat.named("e9m3"))
        XCTAssertThrowsError(try FloatFormat.named("e5m0"))
        XCTAssertEqual(try RoundingMode.named("RNE"), .nearestEven)
        XCTAssertEqual(try RoundingMode.named("sr"), .stochastic)
        XCTAssertEqual(try RoundingMode.named("toward_zero"), .towardZero)
        XCTAssertThrowsError(try RoundingMode.named("sideways"))
    }

    /// ml_dtypes' double-rounding probe: 1 + 2^-(p+1) + 2^-(p_i+1)... a value just above a
    /// tie of the narrow format rounds up directly, but through an intermediate format
    /// that drops the small term it becomes an exact tie and goes to even.
    func testDoubleRoundingProbes() {
        // fp32 -> e4m3fn directly vs via bf16 (p = 3 and 7 mantissa bits).
        let x = Float(1) + 0x1p-4 + 0x1p-10
        XCTAssertEqual(FloatFormat.e4m3fn.encode(x), 0x39)   // 1.125: up
        let viaBF16 = FloatFormat.bf16.decodeFloat(FloatFormat.bf16.encode(x))
        XCTAssertEqual(viaBF16, 1 + 0x1p-4)                   // the small term is gone
        XCTAssertEqual(FloatFormat.e4m3fn.encode(viaBF16), 0x38)  // tie to even: 1.0
        // Double -> bf16 directly vs via fp32.
        let y: Double = 1 + 0x1p-8 + 0x1p-30
        XCTAssertEqual(FloatFormat.bf16.encode(y), 0x3F81)
        XCTAssertEqual(FloatFormat.bf16.encode(Float(y)), 0x3F80)
        // Round-to-odd as the intermediate makes the two-step path correct.
        let odd = FloatFormat.fp32.encode(y, RoundingOptions(mode: .odd))
        XCTAssertEqual(FloatFormat.bf16.encode(Float(bitPattern: odd)), 0x3F81)
        // fp32 -> fp16 via bf16 vs direct.
        let z = Float(1) + 0x1p-11 + 0x1p-20
        XCTAssertEqual(FloatFormat.fp16.encode(z), 0x3C01)
        XCTAssertEqual(FloatFormat.e5m2.encode(Float(1) + 0x1p-3 + 0x1p-12), 0x3D)
        XCTAssertEqual(FloatFormat.e5m2.encode(FloatFormat.fp16.decodeFloat(FloatFormat.fp16.encode(Float(1) + 0x1p-3 + 0x1p-12))), 0x3C)
    }
}
