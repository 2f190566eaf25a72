import Foundation
import XCTest
import PrecLabFiles
@testable import PrecLabReplay
import PrecLabSupport

/// With every tensor kept, a replay takes each STEP record's CRC-32 while the engine
/// reads the updates; with a subset, the walk checks every CRC first. A corrupt record
/// must be the same bad data either way: the same record, offset and CRCs named.
final class StreamReplayCRCTests: XCTestCase {
    private let tensors = [UpdateStreamTensor(name: "wide", shape: [37, 29]), UpdateStreamTensor(name: "flat", shape: [300])]

    /// BASE, four STEPs and FINL (the fp32 sum), with the records' offsets.
    private func writeStream(_ path: String) throws -> [Int] {
        var random = TestRandom(seed: 23)
        let count = tensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
        var truth = (0..<count).map { _ in random.uniform() * 0.05 }
        let writer = try UpdateStreamWriter(path: path, header: try UpdateStreamHeader(tensors: tensors))
        try truth.withUnsafeBufferPointer { try writer.writeBase(values: $0) }
        for step in 1...4 {
            let update = (0..<count).map { _ in random.uniform() * 3e-4 }
            for index in truth.indices { truth[index] += update[index] }
            try update.withUnsafeBufferPointer { try writer.writeStep(step: UInt64(step), learningRate: 1e-5, values: $0) }
        }
        try truth.withUnsafeBufferPointer { try writer.writeFinal(values: $0) }
        try writer.close()
        var offsets: [Int] = []
        try UpdateStreamReader(path: path, options: .init(verifyCRC: false)).forEachRecord { offsets.append($0.offset) }
        return offsets
    }

    private func replayError(_ path: String, subset: Bool) -> String? {
        var options = StreamReplayOptions()
        if subset { options.tensorNames = Set(tensors.map(\.name)) }  // every tensor, through the subset path
        do {
            _ = try StreamReplay.run(path: path, configuration: ReplayConfiguration(format: .bf16, threads: 2),
                                     options: options)
            return nil
        } catch {
            return "\(error)"
        }
    }

    func testACorruptRecordIsTheSameErrorInThePassAndInTheWalk() throws {
        let directory = NSTemporaryDirectory() + "preclab-crc-tests-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let clean = directory + "/clean.bin"
        let offsets = try writeStream(clean)
        XCTAssertNil(replayError(clean, subset: false))
        XCTAssertNil(replayError(clean, subset: true))
        let original = Array(try Data(contentsOf: URL(fileURLWithPath: clean)))
        let payload = 4 * tensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
        // (record, byte inside it, what it hits)
        let corruptions = [(3, 32 + payload - 5, "STEP 3's last tensor"), (2, 32 + 7, "STEP 2's first tensor"),
                           (4, 17, "STEP 4's learning rate"), (1, 32 + payload + 1, "STEP 1's stored CRC"),
                           (0, 40, "BASE"), (5, 32 + 100, "FINL")]
        for (record, byte, what) in corruptions {
            var bytes = original
            bytes[offsets[record] + byte] ^= 0x10
            let path = directory + "/corrupt-\(record).bin"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let inPass = replayError(path, subset: false), inWalk = replayError(path, subset: true)
            XCTAssertEqual(inPass, inWalk, what)
            XCTAssertTrue(inPass?.contains("record #\(record) (starting at byte \(offsets[record]))") == true,
                          "\(what): \(inPass ?? "no error")")
            XCTAssertTrue(inPass?.contains("CRC-32 mismatch") == true, "\(what): \(inPass ?? "no error")")
            XCTAssertTrue(inPass?.contains("offset \(offsets[record] + 32 + payload)") == true,
                          "\(what): \(inPass ?? "no error")")
        }
    }
}
