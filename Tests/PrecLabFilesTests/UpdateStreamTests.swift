import XCTest
@testable import PrecLabFiles

final class UpdateStreamTests: XCTestCase {
    /// A stream written by hand in Python (struct + zlib.crc32, following the spec text):
    /// tensor w[2]; BASE step 0 [1, -2]; STEP 1 lr 0.5 [0.25, -0.125]; FINL 1 [1.25, -2.125].
    static let pythonStream = hexBytes(
        "8950434c420d0a1a01000000580000007b22666f726d6174223a22707265636c61622d75706461746573222c2264656c74615f6474797065223a22463332222c2274656e736f7273223a5b7b226e616d65223a2277222c227368617065223a5b325d7d5d7d202020"
        + "42415345000000000000000000000000000000000000f87f08000000000000000000803f000000c08eedca7000000000"
        + "53544550000000000100000000000000000000000000e03f08000000000000000000803e000000be12f94d0a00000000"
        + "46494e4c000000000100000000000000000000000000f87f08000000000000000000a03f000008c07dc0820f00000000")

    func testReadsTheHandWrittenStream() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("u.bin", Self.pythonStream)
        let reader = try UpdateStreamReader(path: path)
        XCTAssertEqual(reader.header.tensors.map(\.name), ["w"])
        XCTAssertEqual(reader.header.tensors[0].shape, [2])
        XCTAssertEqual(reader.recordsStart, 104)
        var seen: [(UpdateRecordKind, UInt64, [Float])] = []
        let summary = try reader.forEachRecord { record in
            seen.append((record.kind, record.step, Array(record.values(ofTensor: 0))))
            if record.kind == .step { XCTAssertEqual(record.learningRate, 0.5) } else { XCTAssertTrue(record.learningRate.isNaN) }
        }
        XCTAssertEqual(seen.map(\.0), [.base, .step, .final])
        XCTAssertEqual(seen.map(\.1), [0, 1, 1])
        XCTAssertEqual(seen.map(\.2), [[1, -2], [0.25, -0.125], [1.25, -2.125]])
        XCTAssertEqual(summary.stepCount, 1)
        XCTAssertEqual(summary.firstStep, 1)
        XCTAssertEqual(summary.lastStep, 1)
        XCTAssertTrue(summary.hasBase && summary.hasFinal && summary.crcVerified)
        XCTAssertEqual(summary.learningRateMin, 0.5)
        XCTAssertFalse(summary.isTruncated)
    }

    func testWriterProducesTheSpecBytes() throws {
        let directory = try TemporaryDirectory()
        for atomic in [false, true] {
            let path = directory.path("w-\(atomic).bin")
            let writer = try UpdateStreamWriter(path: path, tensors: [UpdateStreamTensor(name: "w", shape: [2])], atomic: atomic)
            try writer.writeBase(step: 0, tensors: [[1, -2]])
            try writer.writeStep(step: 1, learningRate: 0.5, tensors: [[0.25, -0.125]])
            try writer.writeFinal(tensors: [[1.25, -2.125]])
            try writer.close()
            XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: path))), Self.pythonStream, "atomic \(atomic)")
        }
    }

    func testWriterRefusesOutOfOrderRecords() throws {
        let directory = try TemporaryDirectory()
        let writer = try UpdateStreamWriter(path: directory.path("o.bin"), tensors: [UpdateStreamTensor(name: "w", shape: [1])])
        try writer.writeStep(step: 5, learningRate: 1, tensors: [[1]])
        XCTAssertThrowsError(try writer.writeBase(tensors: [[1]]))
        XCTAssertThrowsError(try writer.writeStep(step: 5, learningRate: 1, tensors: [[1]]))
        XCTAssertThrowsError(try writer.writeStep(step: 6, learningRate: 1, tensors: [[1, 2]]))
        try writer.writeFinal(tensors: [[0]])
        XCTAssertThrowsError(try writer.writeStep(step: 7, learningRate: 1, tensors: [[1]]))
        try writer.close()
        XCTAssertThrowsError(try UpdateStreamWriter(path: directory.path("o.bin"), tensors: [UpdateStreamTensor(name: "w", shape: [1])]))
    }

    func testSummaryGapsAndLearningRates() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("g.bin")
        let writer = try UpdateStreamWriter(path: path, tensors: [UpdateStreamTensor(name: "a", shape: [3], dtype: "BF16"),
                                                                  UpdateStreamTensor(name: "b", shape: [1, 2])],
                                            metadata: [("optimizer", "AdamW")])
        for (step, lr) in [(2, 0.1), (3, 0.3), (7, 0.2), (17, Double.nan)] {
            try writer.writeStep(step: UInt64(step), learningRate: lr, tensors: [[1, 2, 3], [Float(step), 0]])
        }
        try writer.close()
        let reader = try UpdateStreamReader(path: path)
        XCTAssertEqual(reader.header.tensors[0].dtype, "BF16")
        XCTAssertEqual(reader.header.metadata.first?.value, "AdamW")
        var bValues: [[Float]] = []
        let summary = try reader.forEachRecord { bValues.append(Array($0.values(ofTensor: 1))) }
        XCTAssertEqual(bValues, [[2, 0], [3, 0], [7, 0], [17, 0]])
        XCTAssertEqual(summary.stepCount, 4)
        XCTAssertEqual(summary.firstStep, 2)
        XCTAssertEqual(summary.lastStep, 17)
        XCTAssertEqual(summary.gapCount, 2)
        XCTAssertEqual(summary.missingSteps, 3 + 9)
        XCTAssertEqual(summary.largestStride, 10)
        XCTAssertEqual(summary.learningRateMin, 0.1)
        XCTAssertEqual(summary.learningRateMax, 0.3)
        XCTAssertEqual(summary.unknownLearningRates, 1)
        XCTAssertFalse(summary.hasBase || summary.hasFinal)
    }

    func testTruncatedTail() throws {
        let directory = try TemporaryDirectory()
        // Cut inside the FINL record: error by default, two records kept when allowed.
        let cut = Array(Self.pythonStream.dropLast(5))
        let path = try directory.write("t.bin", cut)
        assertBadData([path, "offset 200", "file ends inside record #2", "1 complete steps"]) {
            _ = try UpdateStreamReader(path: path).summarize()
        }
        let summary = try UpdateStreamReader(path: path, options: .init(allowTruncated: true)).summarize()
        XCTAssertEqual(summary.recordCount, 2)
        XCTAssertEqual(summary.stepCount, 1)
        XCTAssertEqual(summary.truncatedAt, 200)
        XCTAssertEqual(summary.truncatedBytes, 43)
        XCTAssertFalse(summary.hasFinal)
    }

    /// Every reading rule of the spec, each on a minimal change of the valid stream.
    func testMalformedStreams() throws {
        let directory = try TemporaryDirectory()
        for bad in MalformedStreams.all {
            let path = try directory.write(bad.name, bad.bytes)
            assertBadData([path] + bad.fragments) { _ = try UpdateStreamReader(path: path).summarize() }
        }
    }
}
