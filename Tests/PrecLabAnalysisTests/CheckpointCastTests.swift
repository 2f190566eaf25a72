import Foundation
import PrecLabAnalysis
import PrecLabFiles
import PrecLabFormats
import PrecLabSupport
import PrecLabTestFixtures
import XCTest

/// `CheckpointCast` as a library call: planning refusals and the bytes written.
final class CheckpointCastTests: ScratchTestCase {
    /// 1 + 2^-9 is below half a bf16 ulp at 1 (2^-8): nearest-even gives 1.0 (0x3F80);
    /// 1 + 3·2^-9 lies above the midpoint 1 + 2^-8 and rounds up to 0x3F81. The I64
    /// tensor is copied unchanged; the unselected F32 tensor too.
    func testRoundsSelectedTensorsAndCopiesTheRest() throws {
        try Fixtures.write(path("in.safetensors"), [
            FixtureTensor(name: "a.weight", dtype: .f32, shape: [2], values: [1 + 0x1p-9, 1 + 3 * 0x1p-9]),
            FixtureTensor(name: "b.weight", dtype: .f32, shape: [1], values: [1 + 0x1p-9]),
            FixtureTensor(name: "steps", dtype: .i64, shape: [1], values: [7]),
        ])
        let checkpoint = try Checkpoint.open(path("in.safetensors"))
        let cast = try CheckpointCast(checkpoint: checkpoint,
                                      options: CastOptions(format: .bf16, selection: try TensorSelection(pattern: "^a")))
        XCTAssertEqual(cast.castNames, ["a.weight"])
        XCTAssertEqual(cast.unselectedFloating, ["b.weight"])
        XCTAssertEqual(cast.target, .bf16)
        try cast.write(to: path("out.safetensors"))
        let out = try SafetensorsFile(path: path("out.safetensors"))
        let a = try XCTUnwrap(out.tensor(named: "a.weight"))
        XCTAssertEqual(a.dtype, .bf16)
        let bytes = Array(out.bytes(of: a))
        XCTAssertEqual(bytes, [0x80, 0x3F, 0x81, 0x3F])
        XCTAssertEqual(try XCTUnwrap(out.tensor(named: "b.weight")).dtype, .f32)
        XCTAssertEqual(Array(out.bytes(of: try XCTUnwrap(out.tensor(named: "steps")))), [7, 0, 0, 0, 0, 0, 0, 0])
    }

    func testPlanningRefusals() throws {
        try Fixtures.write(path("ints.safetensors"), [FixtureTensor(name: "n", dtype: .i64, shape: [1], values: [1])])
        try Fixtures.write(path("f.safetensors"), [FixtureTensor(name: "w", dtype: .f32, shape: [1], values: [1])])
        // No floating tensor at all: the data, not the request, is at fault.
        XCTAssertThrowsError(try CheckpointCast(checkpoint: try Checkpoint.open(path("ints.safetensors")),
                                                options: CastOptions(format: .bf16))) {
            XCTAssertEqual(($0 as? PrecLabError)?.isDataError, true, "\($0)")
        }
        // tf32 has no safetensors dtype; a selection matching nothing.
        XCTAssertThrowsError(try CheckpointCast(checkpoint: try Checkpoint.open(path("f.safetensors")),
                                                options: CastOptions(format: try FloatFormat.named("tf32")))) {
            guard case PrecLabError.invalidArgument = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try CheckpointCast(checkpoint: try Checkpoint.open(path("f.safetensors")),
                                                options: CastOptions(format: .bf16,
                                                                     selection: try TensorSelection(pattern: "^x$")))) {
            guard case PrecLabError.invalidArgument(let message) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(message.contains("matched none"), message)
        }
    }
}
