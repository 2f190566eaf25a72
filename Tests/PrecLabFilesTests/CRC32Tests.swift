import XCTest
@testable import PrecLabFiles

final class CRC32Tests: XCTestCase {
    func testKnownValues() {
        // The standard check value of CRC-32/ISO-HDLC, and zlib.crc32 of short inputs.
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(CRC32.checksum([]), 0)
        XCTAssertEqual(CRC32.checksum([0]), 0xD202_EF8D)  // zlib.crc32(b'\x00')
        XCTAssertEqual(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)), 0x414F_A339)
    }

    /// Slicing-by-16 against a bit-at-a-time reference, across the 16-byte boundaries.
    func testSlicingMatchesBitwiseReference() {
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1000] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            XCTAssertEqual(CRC32.checksum(bytes), bitwiseCRC(bytes), "length \(length)")
        }
    }

    /// The carry-less folding (when this CPU has it) against slicing-by-16 alone and the
    /// bitwise reference: lengths around the 64-byte threshold and the 16-byte blocks,
    /// unaligned starts, and non-zero starting values.
    func testFoldingMatchesSlicing() throws {
        try XCTSkipUnless(CRC32.foldingAvailable, "this CPU has no PCLMULQDQ: the folding cannot run here")
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<9000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes.withUnsafeBytes { raw in
            for length in [63, 64, 65, 79, 80, 81, 127, 128, 129, 191, 192, 255, 256, 1000, 4096, 8191] {
                for offset in [0, 1, 3, 8] {
                    let slice = UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)])
                    for start: UInt32 in [0, 0xFFFF_FFFF, 0x1234_5678] {
                        XCTAssertEqual(CRC32.update(start, slice), CRC32.updateWithTables(start, slice),
                                       "length \(length) offset \(offset) start \(start)")
                    }
                    if offset == 0 { XCTAssertEqual(CRC32.update(0, slice), bitwiseCRC(Array(slice)), "length \(length)") }
                }
            }
        }
    }

    func testContinuationAndCombine() {
        let bytes = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let whole = bitwiseCRC(bytes)
        for split in [0, 1, 17, 2500, 4999, 5000] {
            let a = Array(bytes[..<split]), b = Array(bytes[split...])
            let crcA = CRC32.checksum(a)
            XCTAssertEqual(b.withUnsafeBytes { CRC32.checksum($0, continuing: crcA) }, whole, "split \(split)")
            XCTAssertEqual(CRC32.combine(crcA, CRC32.checksum(b), length: b.count), whole, "split \(split)")
        }
    }

    /// An appender built once for a length joins any two pieces as `combine` does, and a
    /// run of equal pieces (as the replay's tiles give) to the CRC of their concatenation.
    func testAppenderJoinsPiecesOfOneLength() {
        let bytes = (0..<12_288).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
        for length in [0, 1, 7, 3000, 4096] {
            let appender = CRC32.Appender(length: length)
            var joined: UInt32 = 0
            var consumed = 0
            while consumed + length <= bytes.count && (length > 0 || consumed == 0) {
                let piece = CRC32.checksum(Array(bytes[consumed..<(consumed + length)]))
                XCTAssertEqual(appender.combine(joined, piece), CRC32.combine(joined, piece, length: length),
                               "length \(length) at \(consumed)")
                joined = appender.combine(joined, piece)
                consumed += length
                if length == 0 { break }
            }
            XCTAssertEqual(joined, bitwiseCRC(Array(bytes[..<consumed])), "length \(length)")
        }
    }

    func testParallelResultDoesNotDependOnThreadCount() {
        let count = CRC32.parallelThreshold * 2 + 12345
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 2654435761) >> 7) }
        bytes.withUnsafeBytes { raw in
            let single = CRC32.update(0, raw)
            for threads in [1, 2, 3, 8] {
                XCTAssertEqual(CRC32.checksum(raw, threads: threads), single, "threads \(threads)")
            }
        }
    }

    func testFileRangeChecksumMatchesInMemory() throws {
        let directory = try TemporaryDirectory()
        let count = 3 * CRC32.pieceSize + 777
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 40503) >> 5) }
        let file = try MappedFile(path: directory.write("crc.bin", bytes))
        for range in [0..<count, 5..<(count - 3), 100..<200] {
            let expected = bytes.withUnsafeBytes { CRC32.update(0, UnsafeRawBufferPointer(rebasing: $0[range])) }
            for threads in [1, 2, 3] {
                XCTAssertEqual(try CRC32.checksum(of: file, range: range, threads: threads), expected, "\(range) threads \(threads)")
            }
        }
    }

    private func bitwiseCRC(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0xEDB8_8320 : 0) }
        }
        return ~crc
    }
}
