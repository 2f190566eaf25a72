import Foundation
import XCTest
import PrecLabFiles
import PrecLabSupport

/// Edge cases found in review: each once crashed, hung, or was misreported.
final class FilesEdgeCaseTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws { directory = try CLIRunner.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// A stream preamble and header, padded as the spec requires.
    private func streamPrefix(header: String) -> [UInt8] {
        var json = Array(header.utf8)
        while (16 + json.count) % 8 != 0 { json.append(0x20) }
        var bytes: [UInt8] = [0x89, 0x50, 0x43, 0x4C, 0x42, 0x0D, 0x0A, 0x1A]
        withUnsafeBytes(of: UInt32(1).littleEndian) { bytes += $0 }
        withUnsafeBytes(of: UInt32(json.count).littleEndian) { bytes += $0 }
        return bytes + json
    }

    /// A payload just under 2^63 bytes leaves no room for the record framing: bad data,
    /// not an arithmetic-overflow trap.
    func testPayloadTooLargeForARecordIsBadData() throws {
        let header = #"{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[2305843009213693951]}]}"#
        try Data(streamPrefix(header: header)).write(to: URL(fileURLWithPath: path("huge.bin")))
        let result = try CLIRunner.run(["inspect", path("huge.bin")])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("2^63"), result.stderr)
    }

    /// Steps missing between BASE and the first STEP are a gap like any other.
    func testGapAfterBaseIsCounted() throws {
        let writer = try UpdateStreamWriter(path: path("gap.bin"), tensors: [UpdateStreamTensor(name: "w", shape: [2])])
        try writer.writeBase(step: 0, tensors: [[1, 2]])
        try writer.writeStep(step: 5, learningRate: 1e-3, tensors: [[0.5, 0.5]])
        try writer.writeStep(step: 6, learningRate: 1e-3, tensors: [[0.5, 0.5]])
        try writer.writeFinal(tensors: [[2, 3]])
        try writer.close()
        let summary = try UpdateStreamReader(path: path("gap.bin")).summarize()
        XCTAssertEqual(summary.gapCount, 1)
        XCTAssertEqual(summary.missingSteps, 4)
        XCTAssertEqual(summary.largestStride, 5)
        let replay = try CLIRunner.run(["replay", path("gap.bin"), "--quiet"])
        XCTAssertEqual(replay.status, 0, replay.stderr)
        XCTAssertTrue(replay.stderr.contains("1 gap(s)"), replay.stderr)
    }

    /// A safetensors header of 123 bytes starts the file with 0x7B ("{"): still safetensors.
    func testSafetensorsWhoseLengthByteLooksLikeJSON() throws {
        var json = Array(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#.utf8)
        while json.count < 123 { json.append(0x20) }
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(123).littleEndian) { bytes += $0 }
        bytes += json + [UInt8](repeating: 0, count: 8)
        XCTAssertEqual(bytes[0], UInt8(ascii: "{"))
        try Data(bytes).write(to: URL(fileURLWithPath: path("n123.safetensors")))
        XCTAssertEqual(try FileKind.detect(path("n123.safetensors")), .safetensors)
        let result = try CLIRunner.run(["inspect", path("n123.safetensors"), "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("\"kind\": \"safetensors\""), result.stdout)
    }

    /// A FIFO is refused at once instead of blocking in open().
    func testFIFOIsRefusedWithoutBlocking() throws {
        XCTAssertEqual(mkfifo(path("fifo"), 0o600), 0)
        let result = try CLIRunner.run(["inspect", path("fifo")])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("not a regular file"), result.stderr)
    }
}
