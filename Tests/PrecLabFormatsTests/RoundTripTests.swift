import XCTest
@testable import PrecLabFormats

/// Every code of every format of 16 bits or fewer (and tf32's 2^19): decode then encode
/// gives the code back; NaN codes give NaN. Also checks the decoded values against the
/// independent model's enumeration.
final class RoundTripTests: XCTestCase {
    static var smallFormats: [FloatFormat] {
        FloatFormat.standard.filter { $0.bitWidth <= 19 && $0 != .fp32 }
            + [try! FloatFormat.custom(exponentBits: 4, mantissaBits: 3),
               try! FloatFormat.custom(exponentBits: 3, mantissaBits: 4),
               try! FloatFormat.custom(exponentBits: 8, mantissaBits: 3),
               try! FloatFormat.custom(exponentBits: 2, mantissaBits: 1)]
    }

    func testDecodeEncodeRoundTripEveryCode() {
        for format in RoundTripTests.smallFormats {
            let model = ReferenceFormat.model(format)
            var modelValue: [UInt32: Double] = [:]
            for (value, code) in zip(model.values, model.codes) {
                modelValue[model.code(negative: false, magnitude: code)] = value
                if format.hasSignBit && (code != 0 || format.hasNegativeZero) { modelValue[model.code(negative: true, magnitude: code)] = -value }
            }
            let codeCount = UInt32(1) << format.bitWidth
            var failures = 0
            for raw in 0..<codeCount {
                let bits = raw << UInt32(format == .tf32 ? 13 : 0)
                let double = format.decode(bits)
                let float = format.decodeFloat(bits)
                if format.isNaN(bits) {
                    if !(double.isNaN && float.isNaN && format.isNaN(format.encode(double))
                         && format.isNaN(format.encode(float))) {
                        failures += 1
                        if failures < 5 { XCTFail("\(format) NaN code \(bits) did not stay NaN") }
                    }
                    continue
                }
                let expectedCode = (format.hasNegativeZero || double != 0) ? bits : 0
                let ok = format.encode(double) == expectedCode && format.encode(float) == expectedCode
                    && Double(float).bitPattern == double.bitPattern
                var valueOK = true
                if let expected = modelValue[bits] {
                    valueOK = expected == double && (expected != 0 || expected.sign == double.sign)
                } else if !format.isInfinite(bits) {
                    valueOK = false
                }
                if !(ok && valueOK) {
                    failures += 1
                    if failures < 5 {
                        XCTFail("\(format) code \(String(bits, radix: 16)): decoded \(double), "
                            + "re-encoded \(String(format.encode(double), radix: 16)), model \(String(describing: modelValue[bits]))")
                    }
                }
            }
            XCTAssertEqual(failures, 0, "\(format)")
        }
    }

    func testFP32IsIdentityFromFloat() {
        for bits: UInt32 in [0, 0x8000_0000, 1, 0x807F_FFFF, 0x3F80_0000, 0x7F80_0000, 0x7F80_0001, 0xFFC1_2345] {
            XCTAssertEqual(FloatFormat.fp32.encode(Float(bitPattern: bits)), bits)
        }
        XCTAssertEqual(FloatFormat.fp32.encode(Float(bitPattern: 0x807F_FFFF), RoundingOptions(flushSubnormals: true)), 0x8000_0000)
        XCTAssertEqual(FloatFormat.fp32.encode(1 + 0x1p-24 as Double), 0x3F80_0000)
        XCTAssertEqual(FloatFormat.fp32.encode(1 + 0x1p-24 + 0x1p-50 as Double), 0x3F80_0001)
    }
}
