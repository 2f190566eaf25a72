import XCTest
@testable import PrecLabFiles

final class SafetensorsWriterTests: XCTestCase {
    func testLayoutMatchesTheReferenceWriter() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("out.safetensors")
        try SafetensorsWriter.write(to: path, tensors: [
            (SafetensorsTensorSpec(name: "b", dtype: .u8, shape: [3]), [1, 2, 3]),
            (SafetensorsTensorSpec(name: "a", dtype: .bf16, shape: [1]), [0x80, 0x3F]),
            (SafetensorsTensorSpec(name: "c", dtype: .f32, shape: [1]), floatBytes([2])),
        ], metadata: [("format", "pt")])
        // Expected header written out by hand from the reference rules: metadata first,
        // then F32 (align 4), BF16 (2), U8 (1); padded with spaces to a multiple of 8.
        var json = #"{"__metadata__":{"format":"pt"},"c":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]},"b":{"dtype":"U8","shape":[3],"data_offsets":[6,9]}}"#
        while json.utf8.count % 8 != 0 { json += " " }
        let expected = littleEndianBytes(UInt64(json.utf8.count)) + Array(json.utf8) + floatBytes([2]) + [0x80, 0x3F, 1, 2, 3]
        XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: path))), expected)
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.metadata.first?.value, "pt")
        XCTAssertEqual(Array(file.bytes(of: file.tensor(named: "b")!)), [1, 2, 3])
        // Existing output refused without force; a failed producer leaves no file.
        XCTAssertThrowsError(try SafetensorsWriter.write(to: path, tensors: []))
        let failed = directory.path("failed.safetensors")
        XCTAssertThrowsError(try SafetensorsWriter.write(
            to: failed, tensors: [SafetensorsTensorSpec(name: "x", dtype: .f32, shape: [2])]) { _, sink in
                try [UInt8](repeating: 0, count: 4).withUnsafeBytes { try sink($0) }
            })
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.url.path), ["out.safetensors"])
    }
}
