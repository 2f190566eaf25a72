import Foundation
import XCTest
@testable import PrecLabFiles
import PrecLabSupport

/// Issue 11, smaller findings in the readers: an index reaching outside its folder,
/// and .npy headers with non-ASCII bytes (refused as numpy refuses them).
final class HostileInputTests: XCTestCase {
    func testIndexEntryWithDotDotIsRefusedLikeAnAbsolutePath() throws {
        let directory = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory.path("idx"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory.path("x"), withIntermediateDirectories: true)
        // A valid shard outside the index folder, and one inside it.
        let shard = safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                                     data: floatBytes([1]))
        try directory.write("x/model.safetensors", shard)
        try directory.write("idx/model.safetensors", shard)
        for escaping in ["../x/model.safetensors", "./../x/model.safetensors", "sub/../../x/model.safetensors"] {
            let index = try directory.write("idx/model.safetensors.index.json",
                                            Array(#"{"weight_map":{"w":"\#(escaping)"}}"#.utf8))
            assertBadData([index, "'w'", "'\(escaping)'", "leaves the index folder"]) {
                _ = try Checkpoint.open(index)
            }
        }
        // The same file named plainly is read.
        let index = try directory.write("idx/model.safetensors.index.json",
                                        Array(#"{"weight_map":{"w":"model.safetensors"}}"#.utf8))
        XCTAssertEqual(try Checkpoint.open(index).tensors.map(\.name), ["w"])
    }

    /// A v1/v2/v3 .npy whose header dict is `dict` (padded per the format).
    private func npy(major: UInt8, dict: [UInt8]) -> [UInt8] {
        let preamble = major == 1 ? 10 : 12
        var header = dict
        while (preamble + header.count + 1) % 64 != 0 { header.append(0x20) }
        header.append(0x0A)
        let length = major == 1 ? littleEndianBytes(UInt16(header.count)) : littleEndianBytes(UInt32(header.count))
        return NpyArray.magic + [major, 0] + length + header + floatBytes([1.5])
    }

    /// numpy 2.x, checked by hand: v1/v2 headers decode as latin-1 and v3 as UTF-8, then
    /// go through ast.literal_eval and a check that the keys are exactly descr,
    /// fortran_order, shape. So 0xff outside a string is a syntax error in every version,
    /// 0xff inside the descr string gives "descr is not a valid dtype descriptor", and in
    /// v3 a lone 0xff is not UTF-8 at all (UnicodeDecodeError).
    func testNonASCIIHeaderBytesAreRefusedAsNumpyRefusesThem() throws {
        let directory = try TemporaryDirectory()
        let plain = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }".utf8)
        for major: UInt8 in [1, 2, 3] {
            let good = try directory.write("good\(major).npy", npy(major: major, dict: plain))
            XCTAssertEqual(try NpyArray(path: good).floatValues(), [1.5])

            // 0xff inside the descr string.
            var inString = plain
            inString.insert(0xFF, at: 12)
            let path = try directory.write("ff\(major).npy", npy(major: major, dict: inString))
            let preamble = major == 1 ? 10 : 12
            let fragment = major == 3 ? "must be UTF-8" : "non-ASCII byte 0xff"
            assertBadData([path, "offset \(preamble + (major == 3 ? 0 : 12))", fragment]) { _ = try NpyArray(path: path) }

            // 0xff between tokens.
            var between = plain
            between.insert(0xFF, at: 1)
            let other = try directory.write("gap\(major).npy", npy(major: major, dict: between))
            assertBadData([other, "invalid .npy header"]) { _ = try NpyArray(path: other) }
        }
        // Valid UTF-8 that is not ASCII (e acute) in a v3 header is refused too: only a
        // structured dtype's field names could hold it.
        var accented = plain
        accented.replaceSubrange(11..<14, with: Array("<f\u{e9}".utf8))
        let path = try directory.write("utf8.npy", npy(major: 3, dict: accented))
        assertBadData([path, "non-ASCII byte 0xc3"]) { _ = try NpyArray(path: path) }
    }

    /// The streaming (non-atomic) stream writer sends `/dev/stdout`-style names to the
    /// descriptor, never to a file of that name.
    func testStreamingWriterWritesThroughADescriptorLink() throws {
        let directory = try TemporaryDirectory()
        var ends: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&ends), 0)
        defer { close(ends[0]) }
        let link = directory.path("live.bin")
        XCTAssertEqual(symlink("/proc/self/fd/\(ends[1])", link), 0)
        let writer = try UpdateStreamWriter(path: link, tensors: [UpdateStreamTensor(name: "w", shape: [1])])
        try [Float(0.5)].withUnsafeBufferPointer { try writer.writeStep(step: 1, learningRate: 0.1, values: $0) }
        try writer.close()
        close(ends[1])
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(ends[0], &chunk, chunk.count)
            guard count > 0 else { break }
            received += chunk[0..<count]
        }
        XCTAssertEqual(Array(received.prefix(8)), UpdateStreamFormat.magic)
        var status = stat()
        XCTAssertEqual(lstat(link, &status), 0)
        XCTAssertEqual(status.st_mode & S_IFMT, S_IFLNK, "the link was replaced")
    }
}
