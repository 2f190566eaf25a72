import Foundation
import PrecLabFiles
import PrecLabSupport
import XCTest
@testable import PrecLabSynth

/// `--base CHECKPOINT`: W0 read from a safetensors file instead of generated.
final class SynthCheckpointBaseTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("preclab-synth-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A safetensors file laid out by hand: 8-byte header length, space-padded JSON,
    /// tensors back to back in the order given.
    private func writeSafetensors(_ tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])]) throws -> String {
        var entries: [String] = []
        var data: [UInt8] = []
        for tensor in tensors {
            let start = data.count
            data += tensor.bytes
            entries.append("\"\(tensor.name)\":{\"dtype\":\"\(tensor.dtype)\",\"shape\":\(tensor.shape),\"data_offsets\":[\(start),\(data.count)]}")
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var file = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
        file += header + data
        let path = directory.appendingPathComponent("model.safetensors").path
        try Data(file).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func le16(_ values: [UInt16]) -> [UInt8] { values.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }
    private func le32(_ values: [Float]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
    }

    func testTwoDimensionalFloatTensorsAreDecodedExactly() throws {
        let path = try writeSafetensors([
            ("layers.10.w", "BF16", [2, 3], le16([0x3F80, 0xC000, 0x0001, 0x8000, 0x7F7F, 0x3EAA])),
            ("layers.2.bias", "F32", [3], le32([1, 2, 3])),
            ("layers.2.w", "F16", [2, 2], le16([0x3C00, 0x0001, 0x7BFF, 0xBC00])),
            ("layers.3.ids", "I32", [2, 2], [UInt8](repeating: 0, count: 16)),
            ("layers.3.w", "F32", [2, 2], le32([0.5, -0.25, 1e-40, 3])),
        ])
        let checkpoint = try Checkpoint.open(path)
        let all = try SynthCheckpointBase.tensors(of: checkpoint, include: nil)
        XCTAssertEqual(all.map(\.name), ["layers.2.w", "layers.3.w", "layers.10.w"])
        XCTAssertEqual(all.map(\.dtype), ["F16", "F32", "BF16"])
        XCTAssertEqual(all.map { [$0.rows, $0.columns] }, [[2, 2], [2, 2], [2, 3]])
        // F16: 1, the smallest subnormal 2^-24, the largest finite 65504, -1.
        XCTAssertEqual(all[0].base, [1, 0x1p-24, 65504, -1])
        XCTAssertEqual(all[1].base!.map(\.bitPattern), [Float(0.5), -0.25, 1e-40, 3].map(\.bitPattern))
        // BF16 codes are the top halves of fp32 codes.
        XCTAssertEqual(all[2].base!.map(\.bitPattern),
                       [0x3F80_0000, 0xC000_0000, 0x0001_0000, 0x8000_0000, 0x7F7F_0000, 0x3EAA_0000])

        let selected = try SynthCheckpointBase.tensors(of: checkpoint, include: { $0.hasSuffix(".w") && $0.contains("3") })
        XCTAssertEqual(selected.map(\.name), ["layers.3.w"])
        XCTAssertThrowsError(try SynthCheckpointBase.tensors(of: checkpoint, include: { $0.contains("bias") })) {
            XCTAssertTrue("\($0)".contains("layers.2.bias"), "\($0)")
        }
        XCTAssertThrowsError(try SynthCheckpointBase.tensors(of: checkpoint, include: { $0 == "nothing" }))
    }

    /// A given base is used as it is, and the profiles place their signal against its
    /// own top-k subspaces (found by SVD).
    func testGivenBaseIsUsedAndProfilesFollowItsSubspaces() throws {
        let (m, n, k) = (48, 40, 3)
        let donor = try synthesize(shapes: [(m, n)], steps: 1, profile: .noise, seed: 21)
        let weights = donor.base[0]
        func share(_ profile: SynthProfile) throws -> Double {
            let configuration = SynthConfiguration(
                steps: 30, learningRate: 1e-5, profile: profile, seed: 2,
                gradient: profile.gradient(k: k, signalRank: 2), threads: 1)
            let generator = try SyntheticStreamGenerator(
                configuration: configuration,
                tensors: [.given(name: "w", rows: m, columns: n, weights: weights, dtype: "BF16")])
            var sink = InMemoryStreamSink()
            try generator.generate(into: &sink)
            XCTAssertEqual(sink.base[0].map(\.bitPattern), weights.map(\.bitPattern))
            XCTAssertEqual(sink.metadataValue("base"), "given")
            let update = zip(sink.final[0], sink.base[0]).map { Double($0) - Double($1) }
            return TestSVD(rowMajor: weights.map(Double.init), rows: m, columns: n)
                .principalEnergyShare(of: update, rank: k)
        }
        let isotropic = Double(k * k) / Double(m * n)
        let rl = try share(.rl), sft = try share(.sft)
        XCTAssertLessThan(rl, 5 * isotropic, "rl \(rl)")
        XCTAssertGreaterThan(sft, 0.5, "sft \(sft)")
    }

    func testGivenBaseOfTheWrongSizeOrNotFiniteIsRejected() {
        let configuration = SynthConfiguration(steps: 1, learningRate: 1e-5, profile: .rl)
        XCTAssertThrowsError(try SyntheticStreamGenerator(
            configuration: configuration,
            tensors: [.given(name: "w", rows: 4, columns: 4, weights: [Float](repeating: 0, count: 15), dtype: nil)]))
        var weights = [Float](repeating: 0.01, count: 16)
        weights[5] = .nan
        XCTAssertThrowsError(try SyntheticStreamGenerator(
            configuration: configuration,
            tensors: [.given(name: "w", rows: 4, columns: 4, weights: weights, dtype: nil)])) {
            XCTAssertTrue("\($0)".contains("tensor w: base value 5"), "\($0)")
        }
    }
}
