import Foundation
import PrecLabFiles
import PrecLabSupport
import XCTest
@testable import PrecLabSynth

/// The generator's streams written to disk through the files module and read back
/// with its reader.
final class SynthStreamFileTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("preclab-synth-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func write(_ name: String, profile: SynthProfile = .rl, seed: UInt64 = 1, threads: Int = 1,
                       shapes: [(Int, Int)] = [(40, 24), (24, 33)], steps: Int = 5) throws -> String {
        let path = directory.appendingPathComponent(name).path
        let configuration = SynthConfiguration(steps: steps, learningRate: 1e-4, profile: profile, seed: seed,
                                               threads: threads)
        let tensors = shapes.enumerated().map { index, shape in
            SynthTensorSource.generated(name: SynthTensorSource.defaultName(index: index), rows: shape.0, columns: shape.1)
        }
        let generator = try SyntheticStreamGenerator(configuration: configuration, tensors: tensors)
        var sink = try UpdateStreamFileSink(path: path)
        try generator.generate(into: &sink)
        try sink.close()
        return path
    }

    private func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    func testSameSeedSameBytesAnyThreadCountOtherSeedOtherBytes() throws {
        let shapes = [(150, 130), (9, 7)]  // the first spans two chunks of the AdamW loop
        let first = try bytes(write("a.bin", seed: 3, threads: 1, shapes: shapes, steps: 3))
        XCTAssertEqual(first, try bytes(write("b.bin", seed: 3, threads: 1, shapes: shapes, steps: 3)))
        XCTAssertEqual(first, try bytes(write("c.bin", seed: 3, threads: 2, shapes: shapes, steps: 3)))
        XCTAssertEqual(first, try bytes(write("d.bin", seed: 3, threads: 4, shapes: shapes, steps: 3)))
        XCTAssertNotEqual(first, try bytes(write("e.bin", seed: 4, threads: 1, shapes: shapes, steps: 3)))
    }

    func testReaderAcceptsTheStreamAndFloat32ReplayReproducesFinal() throws {
        for profile in SynthProfile.allCases {
            let path = try write("\(profile).bin", profile: profile, steps: 7)
            let reader = try UpdateStreamReader(path: path)
            XCTAssertEqual(reader.header.tensors.map(\.name), ["synth.0.weight", "synth.1.weight"])
            XCTAssertEqual(reader.header.tensors.map(\.shape), [[40, 24], [24, 33]])
            XCTAssertEqual(reader.header.tensors.map(\.dtype), ["BF16", "BF16"])
            let metadata = Dictionary(uniqueKeysWithValues: reader.header.metadata.map { ($0.key, $0.value) })
            XCTAssertEqual(metadata["profile"], profile.rawValue)
            XCTAssertEqual(metadata["seed"], "1")
            XCTAssertEqual(metadata["lr"], "0.0001")
            XCTAssertEqual(metadata["shapes"], "40x24,24x33")

            var master: [Float] = []
            var final: [Float] = []
            var kinds: [UpdateRecordKind] = []
            var steps: [UInt64] = []
            let summary = try reader.forEachRecord { record in
                kinds.append(record.kind)
                steps.append(record.step)
                switch record.kind {
                case .base:
                    XCTAssertTrue(record.learningRate.isNaN)
                    master = Array(record.values)
                case .step:
                    XCTAssertEqual(record.learningRate, 1e-4)
                    for i in master.indices { master[i] += record.values[i] }
                case .final:
                    final = Array(record.values)
                }
            }
            XCTAssertTrue(summary.crcVerified)
            XCTAssertEqual(summary.stepCount, 7)
            XCTAssertEqual(kinds, [.base] + Array(repeating: .step, count: 7) + [.final])
            XCTAssertEqual(steps, [0, 1, 2, 3, 4, 5, 6, 7, 7])
            XCTAssertEqual(master.map(\.bitPattern), final.map(\.bitPattern), "\(profile)")
            XCTAssertNotEqual(master, try firstRecord(reader), "the replay moved the weights")
        }
    }

    private func firstRecord(_ reader: UpdateStreamReader) throws -> [Float] {
        var base: [Float] = []
        try reader.forEachRecord { if $0.kind == .base { base = Array($0.values) } }
        return base
    }

    func testFileMatchesTheInMemoryRecords() throws {
        let path = try write("m.bin", profile: .sft, seed: 8, steps: 4)
        let memory = try synthesize(shapes: [(40, 24), (24, 33)], steps: 4, lr: 1e-4, profile: .sft, seed: 8)
        var records: [[UInt32]] = []
        try UpdateStreamReader(path: path).forEachRecord { record in
            records.append(contentsOf: (0 ..< 2).map { Array(record.values(ofTensor: $0)).map(\.bitPattern) })
        }
        XCTAssertEqual(records, recordBits(memory))
    }

    func testExistingOutputIsKeptWithoutForce() throws {
        let path = try write("x.bin")
        let before = try bytes(path)
        XCTAssertThrowsError(try UpdateStreamFileSink(path: path)) {
            guard case PrecLabError.outputRefused(_, .exists) = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertEqual(try bytes(path), before)
        XCTAssertNoThrow(try UpdateStreamFileSink(path: path, force: true))
    }
}
