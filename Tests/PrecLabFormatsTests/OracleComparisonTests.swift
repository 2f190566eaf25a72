import XCTest
@testable import PrecLabFormats

/// fp32 -> fp16 against Swift's Float16(Float) (IEEE RNE, NaN kept quiet with its top
/// payload bits), and fp32 -> bf16 against a Double-distance oracle, on a large
/// stratified sample in the normal run.
final class OracleComparisonTests: XCTestCase {
    func testFP16AgainstSwiftFloat16OnStratifiedSample() {
        #if arch(x86_64) || arch(arm64)
        let sample = SampleInputs.bits(randomPerExponent: 3000)  // ~1.9 million patterns
        var failures = 0
        for bits in sample {
            let x = Float(bitPattern: bits)
            let expected = UInt32(Float16(x).bitPattern)
            let got = FloatFormat.fp16.encode(x)
            if got != expected {
                failures += 1
                if failures <= 5 { XCTFail("fp16(\(String(bits, radix: 16))): \(String(got, radix: 16)) vs Float16 \(String(expected, radix: 16))") }
            }
        }
        XCTAssertEqual(failures, 0)
        // The kernel on the same sample.
        let input = sample.map { Float(bitPattern: $0) }
        var codes = [UInt16](repeating: 0, count: input.count)
        input.withUnsafeBufferPointer { source in
            codes.withUnsafeMutableBytes { FloatFormat.fp16.encode(source, into: $0, threads: 2) }
        }
        var kernelFailures = 0
        for (i, x) in input.enumerated() where codes[i] != Float16(x).bitPattern { kernelFailures += 1 }
        XCTAssertEqual(kernelFailures, 0)
        #endif
    }

    /// Nearest bf16 by distances computed in Double (exact for fp32 neighbours).
    static func bf16Oracle(_ x: Float) -> UInt32? {
        let u = x.bitPattern
        if x.isNaN { return nil }
        let truncated = u & 0xFFFF_0000
        let low = Double(Float(bitPattern: truncated))
        if Double(x) == low { return truncated >> 16 }
        let upperBits = truncated &+ 0x1_0000
        // Above the largest finite bf16 the next step is 2^128 (virtual), i.e. Inf.
        let high = (upperBits & 0x7F80_0000) == 0x7F80_0000 ? (x < 0 ? -0x1p128 : 0x1p128)
            : Double(Float(bitPattern: upperBits))
        let below = abs(Double(x) - low), above = abs(high - Double(x))
        if below < above { return truncated >> 16 }
        if above < below { return upperBits >> 16 }
        return (truncated >> 16) & 1 == 0 ? truncated >> 16 : upperBits >> 16
    }

    func testBF16AgainstDoubleDistanceOracle() {
        var failures = 0
        for bits in SampleInputs.bits(randomPerExponent: 1500) {
            let x = Float(bitPattern: bits)
            guard let expected = OracleComparisonTests.bf16Oracle(x) else {
                XCTAssertTrue(FloatFormat.bf16.isNaN(FloatFormat.bf16.encode(x)))
                continue
            }
            let got = FloatFormat.bf16.encode(x)
            if got != expected {
                failures += 1
                if failures <= 5 { XCTFail("bf16(\(String(bits, radix: 16))): \(String(got, radix: 16)) vs \(String(expected, radix: 16))") }
            }
        }
        XCTAssertEqual(failures, 0)
    }
}

/// All 2^32 fp32 inputs against Float16(Float), scalar path and kernel. Runs only with
/// PRECLAB_EXHAUSTIVE=1 (`make test-exhaustive`, a release build).
final class ExhaustiveFP16Tests: XCTestCase {
    func testEveryFloatAgainstSwiftFloat16() throws {
        guard ProcessInfo.processInfo.environment["PRECLAB_EXHAUSTIVE"] == "1" else {
            throw XCTSkip("set PRECLAB_EXHAUSTIVE=1 to check all 2^32 inputs")
        }
        let block = 1 << 22
        var input = [Float](repeating: 0, count: block)
        var codes = [UInt16](repeating: 0, count: block)
        var failures = 0
        for start in stride(from: UInt64(0), to: UInt64(1) << 32, by: block) {
            for i in 0..<block { input[i] = Float(bitPattern: UInt32(start + UInt64(i))) }
            input.withUnsafeBufferPointer { source in
                codes.withUnsafeMutableBytes { FloatFormat.fp16.encode(source, into: $0) }
            }
            for i in 0..<block {
                let expected = Float16(input[i]).bitPattern
                let scalar = FloatFormat.fp16.encode(input[i])
                if codes[i] != expected || scalar != UInt32(expected) {
                    failures += 1
                    if failures <= 5 { XCTFail("fp16 of \(String(input[i].bitPattern, radix: 16)): kernel \(codes[i]) scalar \(scalar) Float16 \(expected)") }
                }
            }
        }
        XCTAssertEqual(failures, 0)
    }
}
