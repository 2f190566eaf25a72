import XCTest
@testable import PrecLabFiles

final class SubBytePackingTests: XCTestCase {
    func testFourAndSixBitLayouts() {
        // F4: element 0 in the low nibble.
        let codes4: [UInt8] = [0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0xF]
        var packed4 = [UInt8](repeating: 0, count: 4)
        codes4.withUnsafeBytes { source in
            packed4.withUnsafeMutableBytes { SubBytePacking.pack(source, count: 8, bitWidth: 4, into: $0) }
        }
        XCTAssertEqual(packed4, [0x21, 0x43, 0x65, 0xF7])
        // F6: codes 0b000001, 0b000010, 0b111111, 0b100000 as a LSB-first bit stream:
        // bits 0-5 = 1, 6-11 = 2, 12-17 = 63, 18-23 = 32
        // -> 0x000001 | 2<<6 | 63<<12 | 32<<18 = 0x83F081 -> bytes 81 F0 83.
        let codes6: [UInt8] = [1, 2, 63, 32]
        var packed6 = [UInt8](repeating: 0, count: 3)
        codes6.withUnsafeBytes { source in
            packed6.withUnsafeMutableBytes { SubBytePacking.pack(source, count: 4, bitWidth: 6, into: $0) }
        }
        XCTAssertEqual(packed6, [0x81, 0xF0, 0x83])
        for (packed, width, codes) in [(packed4, 4, codes4), (packed6, 6, codes6)] {
            var back = [UInt8](repeating: 0xAA, count: codes.count)
            packed.withUnsafeBytes { source in
                back.withUnsafeMutableBytes { SubBytePacking.unpack(source, count: codes.count, bitWidth: width, into: $0) }
            }
            XCTAssertEqual(back, codes, "width \(width)")
        }
    }
}
