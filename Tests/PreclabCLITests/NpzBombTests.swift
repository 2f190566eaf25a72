import Foundation
import PrecLabFiles
import PrecLabSupport
import XCTest

/// Issue 11, item 2: a small `.npz` declaring a huge deflated array. `inspect` streams
/// it through a fixed window (bounded memory, CRC and size checked as it goes); loading
/// the data takes one buffer of the declared size, refused when memory cannot hold it.
final class NpzBombTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws { directory = try CLIRunner.temporaryDirectory() }
    override func tearDownWithError() throws {
        unsetenv("PRECLAB_MEMORY_LIMIT")
        try? FileManager.default.removeItem(at: directory)
    }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Inflating periodic data (periods 1, 5, 300 and the full 32 KiB window) across
    /// many window slides gives the same bytes as the one-buffer pass and as the
    /// pattern itself.
    func testStreamingMatchesOneBufferInflateAcrossWindowSlides() throws {
        for period in [1, 5, 300, 32768] {
            let pattern = (0..<period).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
            let total = 700_001
            var encoder = FixedHuffmanDeflate()
            for byte in pattern { encoder.literal(byte) }
            var produced = period
            while produced < total {
                let length = min(258, total - produced)
                if length >= 3 {
                    encoder.match(length: length, distance: period)
                } else {
                    for index in produced..<total { encoder.literal(pattern[index % period]) }
                }
                produced += length
            }
            let compressed = encoder.finish()
            let expected = (0..<total).map { pattern[$0 % period] }

            var streamed: [UInt8] = []
            var largestPiece = 0
            try compressed.withUnsafeBytes { input in
                try Inflate.stream(input, expectedSize: total) { piece in
                    largestPiece = max(largestPiece, piece.count)
                    streamed += piece
                }
            }
            XCTAssertEqual(streamed.count, total, "period \(period)")
            XCTAssertTrue(streamed == expected, "period \(period): streamed bytes differ")
            XCTAssertLessThanOrEqual(largestPiece, Inflate.streamingWindow)
            let whole = try compressed.withUnsafeBytes { try Inflate.decompress($0, expectedSize: total) }
            XCTAssertTrue(whole == expected, "period \(period): one-buffer bytes differ")
            // One byte more or less than the data holds is refused by both passes.
            for wrong in [total - 1, total + 1] {
                XCTAssertThrowsError(try compressed.withUnsafeBytes { try Inflate.stream($0, expectedSize: wrong) { _ in } })
                XCTAssertThrowsError(try compressed.withUnsafeBytes { try Inflate.decompress($0, expectedSize: wrong) })
            }
        }
    }

    func testInspectOfA128MiBBombStaysBoundedAndLoadingChecksMemory() throws {
        let elements = 32 << 20  // 128 MiB of f4 zeros
        let bomb = try NpzBuilder.zerosArchive(elements: elements)
        XCTAssertLessThan(bomb.count, 2 << 20, "the crafted bomb should be small")
        let file = path("bomb.npz")
        try Data(bomb).write(to: URL(fileURLWithPath: file))

        let archive = try NpzArchive(path: file)
        let header = try archive.describe(archive.entries[0])
        XCTAssertEqual(header.shape, [elements])
        XCTAssertEqual(header.dataBytes, elements * 4)

        // Loading the data needs one buffer of the declared size: refused (exit 1) when
        // the memory available is smaller.
        setenv("PRECLAB_MEMORY_LIMIT", String(32 << 20), 1)
        XCTAssertThrowsError(try archive.array(archive.entries[0])) { error in
            XCTAssertEqual((error as? PrecLabError)?.isDataError, true)
            XCTAssertTrue("\(error)".contains("needs \(archive.entries[0].uncompressedSize) bytes"), "\(error)")
        }
        unsetenv("PRECLAB_MEMORY_LIMIT")

        // The binary, measured: inspect must not hold the inflated array.
        let child = try SpawnedChild(arguments: ["inspect", file, "--json"],
                                     environment: ["PRECLAB_MEMORY_LIMIT": String(32 << 20)])
        defer { child.killIfRunning() }
        let status = try XCTUnwrap(child.wait(seconds: 300), "inspect did not finish")
        XCTAssertEqual(status, .exited(0), child.standardError)
        XCTAssertTrue(child.standardOutput.contains("\"bytes\": \(elements * 4)"), child.standardOutput)
        let peak = try XCTUnwrap(child.peakResidentKiB)
        // The old decoder held the 128 MiB array twice; the streaming pass holds a 256 KiB
        // window on top of the program itself (about 20-40 MiB).
        XCTAssertLessThan(peak, 96 << 10, "inspect peaked at \(peak) KiB")
    }

    func testCorruptCRCIsRejectedByBothPasses() throws {
        var bytes = try NpzBuilder.zerosArchive(elements: 1 << 18)
        // The CRC field of the central directory entry (what the reader trusts).
        let central = try XCTUnwrap(NpzBuilder.centralDirectoryOffset(bytes))
        bytes[central + 16] ^= 0x01
        let file = path("bad.npz")
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let archive = try NpzArchive(path: file)
        for load in [{ _ = try archive.describe(archive.entries[0]) }, { _ = try archive.array(archive.entries[0]) }] {
            XCTAssertThrowsError(try load()) { error in
                XCTAssertEqual((error as? PrecLabError)?.isDataError, true)
                XCTAssertTrue("\(error)".contains("CRC-32 mismatch"), "\(error)")
            }
        }
        let result = try CLIRunner.run(["inspect", file])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("bad.npz[a.npy]: CRC-32 mismatch"), result.stderr)
    }
}

/// A DEFLATE encoder with the fixed Huffman code (RFC 1951 3.2.6): one final block of
/// literals and matches, written independently of the decoder under test.
struct FixedHuffmanDeflate {
    private var bytes: [UInt8] = []
    private var bitBuffer: UInt64 = 0
    private var bitCount = 0

    init() { writeBits(1, count: 1); writeBits(1, count: 2) }  // BFINAL = 1, BTYPE = 01

    mutating func literal(_ byte: UInt8) { symbol(Int(byte)) }

    mutating func match(length: Int, distance: Int) {
        precondition((3...258).contains(length) && (1...32768).contains(distance))
        let lengthBases = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59,
                           67, 83, 99, 115, 131, 163, 195, 227, 258]
        let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
        let index = length == 258 ? 28 : lengthBases.lastIndex { $0 <= length }!
        symbol(257 + index)
        writeBits(length - lengthBases[index], count: lengthExtra[index])
        // Distance codes: two per power of two above 4.
        var code = 0, base = 1, extra = 0
        while true {
            let next = code < 3 ? base + 1 : base + (1 << extra)
            if distance < next { break }
            code += 1
            base = next
            extra = code < 4 ? 0 : (code - 2) / 2
        }
        writeHuffman(code, length: 5)
        writeBits(distance - base, count: extra)
    }

    mutating func finish() -> [UInt8] {
        symbol(256)
        if bitCount > 0 { bytes.append(UInt8(truncatingIfNeeded: bitBuffer)); bitBuffer = 0; bitCount = 0 }
        return bytes
    }

    private mutating func symbol(_ value: Int) {
        switch value {
        case 0...143: writeHuffman(0x30 + value, length: 8)
        case 144...255: writeHuffman(0x190 + value - 144, length: 9)
        case 256...279: writeHuffman(value - 256, length: 7)
        default: writeHuffman(0xC0 + value - 280, length: 8)
        }
    }

    /// Huffman codes go most significant bit first.
    private mutating func writeHuffman(_ code: Int, length: Int) {
        var reversed = 0
        for bit in 0..<length where code & (1 << (length - 1 - bit)) != 0 { reversed |= 1 << bit }
        writeBits(reversed, count: length)
    }

    /// Other fields go least significant bit first.
    private mutating func writeBits(_ value: Int, count: Int) {
        guard count > 0 else { return }
        bitBuffer |= UInt64(value) << UInt64(bitCount)
        bitCount += count
        while bitCount >= 8 {
            bytes.append(UInt8(truncatingIfNeeded: bitBuffer))
            bitBuffer >>= 8
            bitCount -= 8
        }
    }
}

/// One-entry `.npz` archives holding a deflated float32 array of zeros.
enum NpzBuilder {
    static func zerosArchive(elements: Int) throws -> [UInt8] {
        var dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(elements),), }"
        while (10 + dict.utf8.count + 1) % 64 != 0 { dict += " " }
        dict += "\n"
        let npyHeader = [0x93] + Array("NUMPY".utf8) + [1, 0] + le(UInt16(dict.utf8.count)) + Array(dict.utf8)
        let dataBytes = elements * 4
        var encoder = FixedHuffmanDeflate()
        for byte in npyHeader { encoder.literal(byte) }
        encoder.literal(0)
        var remaining = dataBytes - 1
        while remaining >= 3 {
            let length = min(258, remaining)
            let leftover = remaining - length
            // Never leave 1 or 2 bytes that a match cannot cover.
            let take = (leftover == 1 || leftover == 2) ? length - 3 : length
            encoder.match(length: take, distance: 1)
            remaining -= take
        }
        for _ in 0..<remaining { encoder.literal(0) }
        let compressed = encoder.finish()

        // CRC-32 of the header then the zeros; zeros by doubling with combine.
        var crc = npyHeader.withUnsafeBytes { CRC32.checksum($0) }
        var zeroRun = [UInt8](repeating: 0, count: 1 << 16).withUnsafeBytes { CRC32.checksum($0) }
        var runLength = 1 << 16
        var left = dataBytes
        while left > 0 {
            if left & runLength != 0 { crc = CRC32.combine(crc, zeroRun, length: runLength); left -= runLength }
            guard left > 0 else { break }
            if left < runLength {
                let tail = [UInt8](repeating: 0, count: left).withUnsafeBytes { CRC32.checksum($0) }
                crc = CRC32.combine(crc, tail, length: left)
                left = 0
            } else {
                zeroRun = CRC32.combine(zeroRun, zeroRun, length: runLength)
                runLength *= 2
            }
        }
        let uncompressed = npyHeader.count + dataBytes
        precondition(uncompressed < 1 << 32 && compressed.count < 1 << 32)
        let name = Array("a.npy".utf8)
        var zip: [UInt8] = le(UInt32(0x0403_4B50)) + le(UInt16(20)) + le(UInt16(0)) + le(UInt16(8))
            + le(UInt16(0)) + le(UInt16(0)) + le(crc) + le(UInt32(compressed.count)) + le(UInt32(uncompressed))
            + le(UInt16(name.count)) + le(UInt16(0)) + name
        zip += compressed
        let directoryOffset = zip.count
        zip += le(UInt32(0x0201_4B50)) + le(UInt16(20)) + le(UInt16(20)) + le(UInt16(0)) + le(UInt16(8))
            + le(UInt16(0)) + le(UInt16(0)) + le(crc) + le(UInt32(compressed.count)) + le(UInt32(uncompressed))
            + le(UInt16(name.count)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0))
            + le(UInt32(0)) + le(UInt32(0)) + name
        let directorySize = zip.count - directoryOffset
        zip += le(UInt32(0x0605_4B50)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(1)) + le(UInt16(1))
            + le(UInt32(directorySize)) + le(UInt32(directoryOffset)) + le(UInt16(0))
        return zip
    }

    /// Where the (single) central directory entry starts.
    static func centralDirectoryOffset(_ zip: [UInt8]) -> Int? {
        guard zip.count >= 22 else { return nil }
        let eocd = zip.count - 22
        return Int(zip[eocd + 16]) | Int(zip[eocd + 17]) << 8 | Int(zip[eocd + 18]) << 16 | Int(zip[eocd + 19]) << 24
    }

    private static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }
}
