import XCTest
@testable import PrecLabFiles

final class NpyTests: XCTestCase {
    private func array(_ bytes: [UInt8], bf16: Bool = false) throws -> NpyArray {
        let storage = ByteStorage(bytes)
        return try NpyArray(bytes: storage.bytes, name: "fixture.npy", owner: storage, bfloat16ForV2: bf16)
    }

    func testVersionsAndByteOrders() throws {
        let expected: [Float] = [1, 2, 3, 4, 5, 6]
        for (bytes, version) in [(NumpyFixtures.f4v1, 1), (NumpyFixtures.f4v2, 2), (NumpyFixtures.f4v3, 3)] {
            let a = try array(bytes)
            XCTAssertEqual(Int(a.version.major), version)
            XCTAssertEqual(a.shape, [2, 3])
            XCTAssertEqual(a.dtype, .f32)
            XCTAssertEqual(a.floatValues(), expected)
        }
        let big = try array(NumpyFixtures.f4be)
        XCTAssertTrue(big.isBigEndian)
        XCTAssertEqual(big.floatValues(), expected)
        let fortran = try array(NumpyFixtures.f8fortran)
        XCTAssertTrue(fortran.fortranOrder)
        XCTAssertEqual(fortran.dtype, .f64)
        XCTAssertEqual(fortran.floatValues(), expected)
        let ints = try array(NumpyFixtures.i16be)
        XCTAssertEqual(ints.dtype, .i16)
        XCTAssertEqual(ints.rowMajorLittleEndianBytes(), [0xFE, 0xFF, 0x2C, 0x01])
    }

    func testHalfPrecisionIsExact() throws {
        let a = try array(NumpyFixtures.f2)
        let values = try XCTUnwrap(a.floatValues())
        XCTAssertEqual(values.map(\.bitPattern), [
            Float(1).bitPattern, Float(-0.5).bitPattern, Float(65504).bitPattern,
            Float(sign: .plus, exponent: -24, significand: 1).bitPattern, (-Float(0)).bitPattern, Float.infinity.bitPattern,
        ])
    }

    func testV2OnlyAsBFloat16WhenAsked() throws {
        assertBadData(["'|V2'", "bfloat16"]) { _ = try self.array(NumpyFixtures.v2) }
        let a = try array(NumpyFixtures.v2, bf16: true)
        XCTAssertEqual(a.dtype, .bf16)
        XCTAssertEqual(a.floatValues(), [1, -2])
    }

    func testMalformedNpy() throws {
        var badMagic = NumpyFixtures.f4v1; badMagic[1] = 0
        var badVersion = NumpyFixtures.f4v1; badVersion[6] = 4
        let short = Array(NumpyFixtures.f4v1.dropLast(4))
        var longHeader = NumpyFixtures.f4v1; longHeader[9] = 0x7F
        let descr = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".utf8)
        let object = Array("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }   ".utf8)
        let objectFile = NpyArray.magic + [1, 0] + littleEndianBytes(UInt16(object.count)) + object + [0, 0, 0, 0, 0, 0, 0, 0]
        XCTAssertEqual(descr.count > 0, true)
        assertBadData(["offset 1", "\\x93NUMPY"]) { _ = try self.array(badMagic) }
        assertBadData(["offset 6", "version 4.0"]) { _ = try self.array(badVersion) }
        assertBadData(["holds 20 bytes, expected 24"]) { _ = try self.array(short) }
        assertBadData(["runs past the end"]) { _ = try self.array(longHeader) }
        assertBadData(["unsupported descr '|O'"]) { _ = try self.array(objectFile) }
    }

    func testNpzStoredAndDeflated() throws {
        let directory = try TemporaryDirectory()
        let stored = try NpzArchive(path: directory.write("a.npz", NumpyFixtures.npz))
        XCTAssertEqual(stored.entries.map(\.arrayName).sorted(), ["b", "w"])
        XCTAssertEqual(try stored.array(named: "w")?.floatValues(), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try stored.array(named: "b")?.dtype, .i32)
        XCTAssertEqual(try stored.array(named: "b")?.floatValues(), [7])

        let compressed = try NpzArchive(path: directory.write("c.npz", NumpyFixtures.npzc))
        XCTAssertTrue(compressed.entries.allSatisfy { $0.method == 8 })
        let w = try XCTUnwrap(try compressed.array(named: "w"))
        XCTAssertEqual(w.shape, [3, 100])
        XCTAssertEqual(w.floatValues(), (0..<300).map { Float($0) })
        XCTAssertEqual(try compressed.array(named: "z")?.floatValues(), [Float](repeating: 0, count: 1000))

        // A flipped byte inside compressed data: an inflate error or a CRC mismatch, never a crash.
        for offset in stride(from: 60, to: NumpyFixtures.npzc.count - 100, by: 7) {
            var damaged = NumpyFixtures.npzc
            damaged[offset] ^= 0x55
            let path = try directory.write("d.npz", damaged)
            if let archive = try? NpzArchive(path: path) {
                for entry in archive.entries { _ = try? archive.array(entry) }
            }
        }
        var badCRC = NumpyFixtures.npz
        badCRC[200] ^= 1
        let path = try directory.write("e.npz", badCRC)
        assertBadData(["CRC-32 mismatch"]) {
            let archive = try NpzArchive(path: path)
            for entry in archive.entries { _ = try archive.array(entry) }
        }
    }
}
