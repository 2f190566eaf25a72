import XCTest
@testable import PrecLabSpectral

final class CodeComparisonTests: XCTestCase {
    /// Two code buffers of `count` codes that differ exactly at `differing` (a code
    /// differs when any of its bytes does; the byte changed rotates through the code).
    func buffers(count: Int, bytesPerCode: Int, differing: Set<Int>, seed: UInt64, offset: Int = 0) -> ([UInt8], [UInt8]) {
        var random = TestRandom(seed: seed)
        let a = (0..<(count * bytesPerCode + offset)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        var b = a
        for code in differing {
            b[offset + code * bytesPerCode + code % bytesPerCode] ^= 0x80
        }
        return (a, b)
    }

    func testCountsAtBoundaries() {
        for bytes in [1, 2, 4, 8] {
            for count in [0, 1, 2, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255 * 64 + 7, 70_001] {
                var random = TestRandom(seed: UInt64(count * 10 + bytes))
                var differing = Set<Int>()
                if count > 0 {
                    for _ in 0..<(count / 3 + 1) { differing.insert(Int(random.next() % UInt64(count))) }
                    differing.insert(count - 1)
                }
                for offset in [0, 1] {   // unaligned buffers as in mapped files
                    let (a, b) = buffers(count: count, bytesPerCode: bytes, differing: differing, seed: 3, offset: offset)
                    a.withUnsafeBytes { ra in
                        b.withUnsafeBytes { rb in
                            let sa = UnsafeRawBufferPointer(rebasing: ra[offset...])
                            let sb = UnsafeRawBufferPointer(rebasing: rb[offset...])
                            XCTAssertEqual(CodeComparison.countDifferingCodes(sa, sb, bytesPerCode: bytes),
                                           differing.count, "bytes \(bytes) count \(count)")
                            let mask = CodeComparison.differingCodesMask(sa, sb, bytesPerCode: bytes)
                            XCTAssertEqual(mask.positions, differing.sorted(), "bytes \(bytes) count \(count)")
                        }
                    }
                }
            }
        }
    }

    func testThreadCountDoesNotMatter() {
        let count = 3 * CodeComparison.chunkCodes + 123
        var random = TestRandom(seed: 5)
        let differing = Set((0..<5000).map { _ in Int(random.next() % UInt64(count)) })
        let (a, b) = buffers(count: count, bytesPerCode: 2, differing: differing, seed: 9)
        a.withUnsafeBytes { ra in
            b.withUnsafeBytes { rb in
                let one = CodeComparison.countDifferingCodes(ra, rb, bytesPerCode: 2, threads: 1)
                let two = CodeComparison.countDifferingCodes(ra, rb, bytesPerCode: 2, threads: 2)
                XCTAssertEqual(one, differing.count)
                XCTAssertEqual(two, differing.count)
                XCTAssertEqual(CodeComparison.differingCodesMask(ra, rb, bytesPerCode: 2, threads: 1),
                               CodeComparison.differingCodesMask(ra, rb, bytesPerCode: 2, threads: 2))
            }
        }
    }

    /// Bit equality, not numeric equality: +0 and -0 differ, identical NaNs do not.
    func testSignedZeroAndNaNCodes() {
        let bf16: [UInt16] = [0x0000, 0x7FC0, 0x3F80, 0x0001]
        let other: [UInt16] = [0x8000, 0x7FC0, 0x3F80, 0x0002]
        bf16.withUnsafeBytes { a in
            other.withUnsafeBytes { b in
                XCTAssertEqual(CodeComparison.countDifferingCodes(a, b, bytesPerCode: 2), 2)
                XCTAssertEqual(CodeComparison.differingCodesMask(a, b, bytesPerCode: 2).positions, [0, 3])
            }
        }
    }

    /// Def. 2.1: +0 -> -0 is not an update. With the sign bit given, codes that are
    /// both zeros compare equal; everything else still compares by bits. Checked
    /// against numeric equality of the decoded values (x == y is true for ±0 and false
    /// for NaN, so NaN codes are left out of the random draws' oracle) for every code
    /// width, aligned and not, across SWAR words and tails.
    func testSignedZerosAreNotChangesWithTheSignBit() {
        let cases: [(bytes: Int, sign: UInt64, decode: (UInt64) -> Double)] = [
            (1, 0x80, { Double(Float(bitPattern: UInt32($0) << 24)) }),        // e4m3-like top bit; compared as fp32 top byte
            (2, 0x8000, { Double(Float(bitPattern: UInt32($0) << 16)) }),      // bf16
            (4, 0x8000_0000, { Double(Float(bitPattern: UInt32($0))) }),       // fp32
            (8, 0x8000_0000_0000_0000, { Double(bitPattern: $0) }),            // fp64
        ]
        for (bytes, sign, decode) in cases {
            for count in [1, 7, 64, 65, 200, 1031] {
                var random = TestRandom(seed: UInt64(bytes * 1000 + count))
                // Codes drawn mostly from {+0, -0, tiny values}, so every pairing occurs.
                func code() -> UInt64 {
                    switch random.next() % 5 {
                    case 0: return 0
                    case 1: return sign
                    case 2: return 1
                    case 3: return sign | 1
                    default: return random.next() & (sign | (sign - 1)) & ~(sign >> 1)   // finite: top exponent bit clear
                    }
                }
                let a = (0..<count).map { _ in code() }, b = (0..<count).map { _ in code() }
                var expectedBits = 0, expectedValues = 0
                for (x, y) in zip(a, b) where x != y {
                    expectedBits += 1
                    if decode(x) != decode(y) { expectedValues += 1 }
                }
                for offset in [0, 3] {
                    var bufferA = [UInt8](repeating: 0, count: offset), bufferB = bufferA
                    for (x, y) in zip(a, b) {
                        for byte in 0..<bytes {
                            bufferA.append(UInt8(truncatingIfNeeded: x >> UInt64(8 * byte)))
                            bufferB.append(UInt8(truncatingIfNeeded: y >> UInt64(8 * byte)))
                        }
                    }
                    bufferA.withUnsafeBytes { ra in
                        bufferB.withUnsafeBytes { rb in
                            let sa = UnsafeRawBufferPointer(rebasing: ra[offset...])
                            let sb = UnsafeRawBufferPointer(rebasing: rb[offset...])
                            let label = "bytes \(bytes) count \(count) offset \(offset)"
                            XCTAssertEqual(CodeComparison.countDifferingCodes(sa, sb, bytesPerCode: bytes), expectedBits, label)
                            XCTAssertEqual(CodeComparison.countDifferingCodes(sa, sb, bytesPerCode: bytes, zeroSignBit: sign),
                                           expectedValues, label)
                            let mask = CodeComparison.differingCodesMask(sa, sb, bytesPerCode: bytes, zeroSignBit: sign)
                            XCTAssertEqual(mask.positions, (0..<count).filter { decode(a[$0]) != decode(b[$0]) }, label)
                        }
                    }
                }
            }
        }
    }
}
