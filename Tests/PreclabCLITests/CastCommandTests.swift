import Foundation
import PrecLabFiles
import XCTest

/// `preclab cast` through the real binary. Expected codes are worked out by hand from
/// the format definitions (bf16 = top 16 bits of fp32 rounded; fp16 max 65504; e4m3fn
/// max 448 and no Inf; e2m1fn codes 0, 0.5, 1, 1.5, 2, 3, 4, 6).
final class CastCommandTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws { directory = try CLIRunner.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func bytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    }

    func f32(_ values: [Float]) -> [UInt8] { bytes(values.map(\.bitPattern)) }

    func u16(_ data: UnsafeRawBufferPointer) -> [UInt16] {
        stride(from: 0, to: data.count, by: 2).map { UInt16(littleEndian: data.loadUnaligned(fromByteOffset: $0, as: UInt16.self)) }
    }

    /// Values and their bf16 codes under round-to-nearest-even.
    static let bf16Cases: [(Float, UInt16)] = [
        (1.00390625, 0x3F80),           // 0x3F808000: tie, even is down
        (1.01171875, 0x3F82),           // 0x3F818000: tie, even is up
        (Float(bitPattern: 0x3F808001), 0x3F81),  // just above the tie
        (3.14159265, 0x4049),
        (-0.0, 0x8000), (0.0, 0x0000),
        (.infinity, 0x7F80), (-.infinity, 0xFF80),
        (Float(bitPattern: 0x7F7FFFFF), 0x7F80),  // max fp32 rounds past bf16's max to Inf
        (Float(bitPattern: 0x000116C2), 0x0001),  // 1e-40, subnormal
        (Float(bitPattern: 0x80008000), 0x8000),  // tiny negative tie goes to even (-0)
    ]

    func makeInput(_ name: String) throws -> String {
        let values = Self.bf16Cases.map(\.0) + [.nan]
        let file = path(name)
        try SafetensorsWriter.write(to: file, tensors: [
            (SafetensorsTensorSpec(name: "model.layers.10.w", dtype: .f32, shape: [values.count]), f32(values)),
            (SafetensorsTensorSpec(name: "model.layers.2.w", dtype: .f32, shape: [2, 2]), f32([1, 2, 65519, 65520])),
            (SafetensorsTensorSpec(name: "ids", dtype: .i64, shape: [2]), bytes([Int64(7), -1])),
            (SafetensorsTensorSpec(name: "d", dtype: .f64, shape: [1]), bytes([(1 + 0x1p-8 + 0x1p-40 as Double).bitPattern])),
        ], metadata: [("format", "pt"), ("total_size", "123")])
        return file
    }

    func testBF16NearestEvenAndMetadata() throws {
        let input = try makeInput("in.safetensors")
        let output = path("out.safetensors")
        let result = try CLIRunner.run(["cast", input, output, "--dtype", "bf16"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("cast 3 tensors to BF16"), result.stdout)
        let file = try SafetensorsFile(path: output)
        let w = try XCTUnwrap(file.tensor(named: "model.layers.10.w"))
        XCTAssertEqual(w.dtype, .bf16)
        let codes = u16(file.bytes(of: w))
        XCTAssertEqual(Array(codes.dropLast()), Self.bf16Cases.map(\.1))
        XCTAssertEqual(codes.last! & 0x7F80, 0x7F80)
        XCTAssertNotEqual(codes.last! & 0x007F, 0, "NaN stays NaN")
        // F64 goes straight to bf16: 1 + 2^-8 + 2^-40 is above the tie, so it rounds up.
        // (Through fp32 first it would become the tie 1 + 2^-8 and round down to 0x3F80.)
        XCTAssertEqual(u16(file.bytes(of: file.tensor(named: "d")!)), [0x3F81])
        // Integers are copied unchanged.
        XCTAssertEqual(file.tensor(named: "ids")?.dtype, .i64)
        XCTAssertEqual(Array(file.bytes(of: file.tensor(named: "ids")!)), bytes([Int64(7), -1]))
        let metadata = Dictionary(uniqueKeysWithValues: file.metadata.map { ($0.key, $0.value) })
        XCTAssertEqual(metadata["format"], "pt")
        XCTAssertNil(metadata["total_size"])
        XCTAssertEqual(metadata["preclab.cast.dtype"], "BF16")
        XCTAssertEqual(metadata["preclab.cast.rounding"], "nearest-even")
        XCTAssertNotNil(metadata["preclab.version"])
        XCTAssertEqual(metadata["preclab.cast.tensors"], #"["d","model.layers.2.w","model.layers.10.w"]"#)
    }

    func testFP16OverflowAndSaturate() throws {
        let input = try makeInput("in.safetensors")
        for (flags, expected) in [([String](), [UInt16]([0x3C00, 0x4000, 0x7BFF, 0x7C00])),
                                  (["--saturate"], [0x3C00, 0x4000, 0x7BFF, 0x7BFF])] {
            let output = path("fp16\(flags.count).safetensors")
            let result = try CLIRunner.run(["cast", input, output, "--dtype", "F16", "--tensors", "layers\\.2\\."] + flags)
            XCTAssertEqual(result.status, 0, result.stderr)
            let file = try SafetensorsFile(path: output)
            XCTAssertEqual(u16(file.bytes(of: file.tensor(named: "model.layers.2.w")!)), expected, "\(flags)")
            // Not matched by --tensors: copied as F32.
            XCTAssertEqual(file.tensor(named: "model.layers.10.w")?.dtype, .f32)
            XCTAssertEqual(file.tensor(named: "d")?.dtype, .f64)
        }
    }

    func testFP8AndPackedFP4() throws {
        let input = path("small.safetensors")
        try SafetensorsWriter.write(to: input, tensors: [
            (SafetensorsTensorSpec(name: "a", dtype: .f32, shape: [8]), f32([0.5, 1, 1.5, 2, 3, 4, 6, -6])),
            (SafetensorsTensorSpec(name: "b", dtype: .bf16, shape: [3]), bytes([UInt16(0x43E0), 0x43FA, 0xC3E0])),  // 448, 500, -448
        ])
        let fp4 = path("fp4.safetensors")
        XCTAssertEqual(try CLIRunner.run(["cast", input, fp4, "--dtype", "e2m1fn", "--tensors", "^a$"]).status, 0)
        let packed = try SafetensorsFile(path: fp4)
        XCTAssertEqual(packed.tensor(named: "a")?.dtype, .f4)
        XCTAssertEqual(Array(packed.bytes(of: packed.tensor(named: "a")!)), [0x21, 0x43, 0x65, 0xF7])

        let fp8 = path("fp8.safetensors")
        XCTAssertEqual(try CLIRunner.run(["cast", input, fp8, "--dtype", "F8_E4M3", "--tensors", "b"]).status, 0)
        let nonSaturated = try SafetensorsFile(path: fp8)
        XCTAssertEqual(Array(nonSaturated.bytes(of: nonSaturated.tensor(named: "b")!)), [0x7E, 0x7F, 0xFE])
        let saturated = path("fp8s.safetensors")
        XCTAssertEqual(try CLIRunner.run(["cast", input, saturated, "--dtype", "e4m3fn", "--tensors", "b", "--saturate"]).status, 0)
        let file = try SafetensorsFile(path: saturated)
        XCTAssertEqual(Array(file.bytes(of: file.tensor(named: "b")!)), [0x7E, 0x7E, 0xFE])
    }

    func testStochasticRoundingIsSeededAndThreadIndependent() throws {
        let input = path("sr.safetensors")
        let count = 300_000
        let values = (0..<count).map { Float(bitPattern: 0x3F80_0000 | UInt32($0 % 0xFFFF) << 1 | 1) }  // never on a bf16 code
        try SafetensorsWriter.write(to: input, tensors: [
            (SafetensorsTensorSpec(name: "w", dtype: .f32, shape: [count]), f32(values)),
        ])
        var outputs: [[UInt16]] = []
        for (name, seed, threads) in [("a", "1", "1"), ("b", "1", "2"), ("c", "2", "2")] {
            let output = path("sr-\(name).safetensors")
            let result = try CLIRunner.run(["cast", input, output, "--dtype", "bf16", "--rounding", "stochastic", "--seed", seed],
                                           environment: ["PRECLAB_THREADS": threads])
            XCTAssertEqual(result.status, 0, result.stderr)
            let file = try SafetensorsFile(path: output)
            outputs.append(u16(file.bytes(of: file.tensor(named: "w")!)))
            XCTAssertEqual(file.metadata.first { $0.key == "preclab.cast.seed" }?.value, seed)
        }
        XCTAssertEqual(outputs[0], outputs[1], "one thread and two threads must give the same bits")
        XCTAssertNotEqual(outputs[0], outputs[2], "another seed gives other bits")
        var ups = 0
        for (index, code) in outputs[0].enumerated() {
            let down = UInt16(values[index].bitPattern >> 16)
            XCTAssertTrue(code == down || code == down + 1, "element \(index)")
            if code == down + 1 { ups += 1 }
        }
        // Each value rounds up with probability (its low 16 bits)/65536; the expectation:
        let expected = values.reduce(0.0) { $0 + Double($1.bitPattern & 0xFFFF) / 65536 }
        XCTAssertLessThan(abs(Double(ups) - expected), 5 * expected.squareRoot() + 1)
    }

    func testShardedInputGivesOneFile() throws {
        let shards = directory.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: shards, withIntermediateDirectories: true)
        try SafetensorsWriter.write(to: shards.appendingPathComponent("a.safetensors").path,
                                    tensors: [(SafetensorsTensorSpec(name: "x", dtype: .f32, shape: [1]), f32([1.00390625]))])
        try SafetensorsWriter.write(to: shards.appendingPathComponent("b.safetensors").path,
                                    tensors: [(SafetensorsTensorSpec(name: "y", dtype: .f32, shape: [1]), f32([1.01171875]))])
        try Data(#"{"metadata":{"total_size":8},"weight_map":{"x":"a.safetensors","y":"b.safetensors"}}"#.utf8)
            .write(to: shards.appendingPathComponent("model.safetensors.index.json"))
        let output = path("merged.safetensors")
        let result = try CLIRunner.run(["cast", shards.path, output, "--dtype", "bfloat16", "--rounding", "toward-zero"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let file = try SafetensorsFile(path: output)
        XCTAssertEqual(u16(file.bytes(of: file.tensor(named: "x")!)), [0x3F80])
        XCTAssertEqual(u16(file.bytes(of: file.tensor(named: "y")!)), [0x3F81])
    }

    func testRefusalsLeaveNoOutput() throws {
        let input = try makeInput("in.safetensors")
        let output = path("out.safetensors")
        let usage: [([String], String)] = [
            (["--dtype", "tf32"], "tf32 has no safetensors dtype"),
            (["--dtype", "e4m4"], "e4m4 has no safetensors dtype"),
            (["--dtype", "nope"], "unknown format"),
            (["--dtype", "bf16", "--rounding", "sideways"], "unknown rounding mode"),
            (["--dtype", "bf16", "--tensors", "("], "not a valid regular expression"),
            (["--dtype", "bf16", "--tensors", "^nothing$"], "matched none"),
            (["--dtype", "bf16", "--seed", "-3"], "--seed"),
            ([], "--dtype is required"),
        ]
        for (arguments, fragment) in usage {
            let result = try CLIRunner.run(["cast", input, output] + arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(fragment), "\(arguments): \(result.stderr)")
        }
        let same = try CLIRunner.run(["cast", input, input, "--dtype", "bf16", "--force"])
        XCTAssertEqual(same.status, 2)
        XCTAssertTrue(same.stderr.contains("input"), same.stderr)
        // Corrupt input: exit 1 and nothing written.
        var corrupt = Array(try Data(contentsOf: URL(fileURLWithPath: input)))
        corrupt.removeLast(3)
        let bad = path("bad.safetensors")
        try Data(corrupt).write(to: URL(fileURLWithPath: bad))
        let result = try CLIRunner.run(["cast", bad, output, "--dtype", "bf16"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains(bad), result.stderr)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: directory.path)), ["in.safetensors", "bad.safetensors"])
        // Existing output without --force is refused, with --force replaced.
        try Data("x".utf8).write(to: URL(fileURLWithPath: output))
        XCTAssertEqual(try CLIRunner.run(["cast", input, output, "--dtype", "bf16"]).status, 2)
        XCTAssertEqual(try CLIRunner.run(["cast", input, output, "--dtype", "bf16", "--force"]).status, 0)
        XCTAssertEqual(try SafetensorsFile(path: output).tensors.count, 4)
    }
}
