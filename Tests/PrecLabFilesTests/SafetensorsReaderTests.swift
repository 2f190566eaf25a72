import XCTest
@testable import PrecLabFiles

final class SafetensorsReaderTests: XCTestCase {
    func testDTypeTable() {
        XCTAssertEqual(TensorDType.allCases.count, 22)
        let expected: [(String, Int, Bool)] = [
            ("BOOL", 8, false), ("U8", 8, false), ("I8", 8, false), ("I16", 16, false),
            ("U16", 16, false), ("I32", 32, false), ("U32", 32, false), ("I64", 64, false),
            ("U64", 64, false), ("F16", 16, true), ("BF16", 16, true), ("F32", 32, true),
            ("F64", 64, true), ("C64", 64, false), ("F8_E4M3", 8, true), ("F8_E5M2", 8, true),
            ("F8_E8M0", 8, true), ("F8_E4M3FNUZ", 8, true), ("F8_E5M2FNUZ", 8, true),
            ("F6_E2M3", 6, true), ("F6_E3M2", 6, true), ("F4", 4, true),
        ]
        for (name, bits, floating) in expected {
            guard let dtype = TensorDType.named(name) else { XCTFail(name); continue }
            XCTAssertEqual(dtype.bitWidth, bits, name)
            XCTAssertEqual(dtype.isFloatingPoint, floating, name)
        }
        XCTAssertNil(TensorDType.named("f32"))
        XCTAssertEqual(TensorDType.f4.byteCount(elements: 3), nil)  // 12 bits: not whole bytes
        XCTAssertEqual(TensorDType.f4.byteCount(elements: 4), 2)
        XCTAssertEqual(TensorDType.f6E2M3.byteCount(elements: 4), 3)
        XCTAssertNil(TensorDType.f64.byteCount(elements: Int.max / 4))
    }

    func testReadsTensorsAndMetadataInPlace() throws {
        let directory = try TemporaryDirectory()
        // Header padded with trailing spaces as the reference writer does; an unaligned
        // F32 tensor after a 3-byte U8 one.
        let header = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"b":{"dtype":"F32","shape":[2,1],"data_offsets":[3,11]},"s":{"dtype":"BF16","shape":[],"data_offsets":[11,13]}}   "#
        let data: [UInt8] = [1, 2, 3] + floatBytes([1.5, -0.0]) + [0x80, 0x3F]
        let path = try directory.write("m.safetensors", safetensorsBytes(header: header, data: data))
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.tensors.map(\.name), ["a", "b", "s"])
        XCTAssertEqual(file.metadata.map(\.key), ["format"])
        let b = try XCTUnwrap(file.tensor(named: "b"))
        XCTAssertEqual(b.dtype, .f32)
        XCTAssertEqual(b.shape, [2, 1])
        XCTAssertEqual(b.elementCount, 2)
        XCTAssertEqual(b.fileRange, (8 + header.utf8.count + 3)..<(8 + header.utf8.count + 11))
        let bytes = file.bytes(of: b)
        XCTAssertEqual(bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self), 0x3FC0_0000)
        XCTAssertEqual(bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self), 0x8000_0000)
        let s = try XCTUnwrap(file.tensor(named: "s"))
        XCTAssertEqual(s.shape, [])
        XCTAssertEqual(s.elementCount, 1)
        XCTAssertEqual(Array(file.bytes(of: s)), [0x80, 0x3F])
    }

    func testLeadingSpacesAndEmptyFileAccepted() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("e.safetensors", safetensorsBytes(header: "  {}  ", data: []))
        XCTAssertEqual(try SafetensorsFile(path: path).tensors.count, 0)
    }

    func testValidationRulesNameTheProblem() throws {
        let directory = try TemporaryDirectory()
        let f32x2 = #""dtype":"F32","shape":[2]"#
        let cases: [(String, [UInt8], [String])] = [
            ("tiny", [1, 2, 3], ["too small", "8 bytes"]),
            ("huge-n", littleEndianBytes(UInt64(100_000_001)) + [0x7B, 0x7D], ["exceeds", "100000000"]),
            ("n-past-end", littleEndianBytes(UInt64(50)) + Array("{}".utf8), ["past the end"]),
            ("not-json", safetensorsBytes(header: "{x}", data: []), ["not valid UTF-8 JSON", "offset 9"]),
            ("not-utf8", littleEndianBytes(UInt64(6)) + [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x7D], ["invalid UTF-8"]),
            ("dup", safetensorsBytes(header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, data: [0, 0]),
             ["duplicate key \"a\""]),
            ("hole", safetensorsBytes(header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, data: [0, 0]),
             ["'a'", "leaves a hole", "start at 0"]),
            ("overlap", safetensorsBytes(header: #"{"a":{\#(f32x2),"data_offsets":[0,8]},"b":{\#(f32x2),"data_offsets":[4,12]}}"#, data: Array(repeating: 0, count: 12)),
             ["'b'", "overlaps"]),
            ("size", safetensorsBytes(header: #"{"a":{\#(f32x2),"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
             ["'a'", "hold 4 bytes, expected 8"]),
            ("beyond", safetensorsBytes(header: #"{"a":{\#(f32x2),"data_offsets":[0,8]}}"#, data: [0, 0, 0, 0]),
             ["'a'", "past the end"]),
            ("tail", safetensorsBytes(header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, data: [0, 9]),
             ["end of the file", "buffer is 2 bytes"]),
            ("overflow", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}"#, data: []),
             ["'a'", "overflows"]),
            ("dtype", safetensorsBytes(header: #"{"a":{"dtype":"F12","shape":[1],"data_offsets":[0,1]}}"#, data: [0]),
             ["'a'", "unknown dtype 'F12'"]),
            ("negative", safetensorsBytes(header: #"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}"#, data: [0]),
             ["'a'", "non-negative"]),
            ("reversed", safetensorsBytes(header: #"{"a":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}}"#, data: [0]),
             ["'a'", "begin is after end"]),
            ("packed", safetensorsBytes(header: #"{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#, data: [0, 0]),
             ["'a'", "whole number of bytes"]),
            ("meta", safetensorsBytes(header: #"{"__metadata__":{"k":1}}"#, data: []),
             ["__metadata__", "'k'", "string"]),
            ("array", safetensorsBytes(header: "[]", data: []), ["JSON object"]),
        ]
        for (name, bytes, fragments) in cases {
            let path = try directory.write(name, bytes)
            assertBadData([path] + fragments) { _ = try SafetensorsFile(path: path) }
        }
    }

    func testNaturalOrder() {
        let names = ["model.layers.10.w", "model.layers.2.w", "lm_head.weight", "model.layers.2.b",
                     "model.embed_tokens.weight", "model.layers.1.w", "model.norm.weight"]
        XCTAssertEqual(names.sorted(by: naturalOrder), [
            "lm_head.weight", "model.embed_tokens.weight", "model.layers.1.w", "model.layers.2.b",
            "model.layers.2.w", "model.layers.10.w", "model.norm.weight",
        ])
        XCTAssertTrue(naturalOrder("a9", "a10"))
        XCTAssertFalse(naturalOrder("a10", "a9"))
        XCTAssertFalse(naturalOrder("a", "a"))
        XCTAssertTrue(naturalOrder("a1", "a01") != naturalOrder("a01", "a1"))
    }

    func testShardedCheckpointThroughIndexAndDirectory() throws {
        let directory = try TemporaryDirectory()
        func shard(_ names: [String]) -> [UInt8] {
            var entries: [String] = []
            for (index, name) in names.enumerated() {
                entries.append(#""\#(name)":{"dtype":"F32","shape":[1],"data_offsets":[\#(index * 4),\#(index * 4 + 4)]}"#)
            }
            return safetensorsBytes(header: "{" + entries.joined(separator: ",") + "}",
                                    data: floatBytes(names.indices.map { Float($0) }))
        }
        try directory.write("model-00001-of-00002.safetensors", shard(["layers.10.w", "layers.2.w"]))
        try directory.write("model-00002-of-00002.safetensors", shard(["layers.1.w"]))
        let index = #"{"metadata":{"total_size":999999},"weight_map":{"layers.10.w":"model-00001-of-00002.safetensors","layers.2.w":"model-00001-of-00002.safetensors","layers.1.w":"model-00002-of-00002.safetensors"}}"#
        try directory.write(Checkpoint.indexFileName, Array(index.utf8))
        for path in [directory.url.path, directory.path(Checkpoint.indexFileName)] {
            let checkpoint = try Checkpoint.open(path)
            XCTAssertEqual(checkpoint.tensors.map(\.name), ["layers.1.w", "layers.2.w", "layers.10.w"])
            XCTAssertEqual(checkpoint.shards.count, 2)
            let t = try XCTUnwrap(checkpoint.tensor(named: "layers.2.w"))
            XCTAssertEqual(checkpoint.bytes(of: t).loadUnaligned(as: Float.self), 1)
        }
        // A mapped tensor missing from its shard.
        let missing = #"{"weight_map":{"layers.10.w":"model-00001-of-00002.safetensors","layers.2.w":"model-00001-of-00002.safetensors","layers.1.w":"model-00002-of-00002.safetensors","x":"model-00002-of-00002.safetensors"}}"#
        let missingPath = try directory.write("missing.index.json", Array(missing.utf8))
        assertBadData(["'x'", "does not contain it"]) { _ = try Checkpoint.open(missingPath) }
        // A tensor stored in two shards.
        try directory.write("model-00002-of-00002.safetensors", shard(["layers.1.w", "layers.2.w"]))
        assertBadData(["'layers.2.w'", "exactly one shard"]) { _ = try Checkpoint.open(directory.url.path) }
    }

    func testInspectingAHugeSparseFileStaysSmall() throws {
        let directory = try TemporaryDirectory()
        // A 3 GiB tensor in a sparse file: opening and validating must not read the data.
        let size = 3 << 30
        let header = Array(#"{"w":{"dtype":"BF16","shape":[1610612736],"data_offsets":[0,3221225472]}}"#.utf8)
        let path = directory.path("huge.safetensors")
        FileManager.default.createFile(atPath: path, contents: Data(littleEndianBytes(UInt64(header.count)) + header))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(8 + header.count + size))
        try handle.close()
        let before = peakResidentMemoryKiB()
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.tensors[0].byteCount, size)
        XCTAssertLessThan(peakResidentMemoryKiB() - before, 50_000, "opening must not read the tensor data")
    }
}

