import Foundation
import PrecLabFiles
import PrecLabTestSupport
import XCTest

/// Malformed files run through the real `preclab inspect`: each must exit 1 with a
/// message naming the file, the offset or tensor, and what was expected; never crash.
final class InspectBadInputTests: XCTestCase {
    struct BadFile {
        let name: String
        let bytes: [UInt8]
        let fragments: [String]
    }

    static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

    static func record(_ tag: String, step: UInt64, lr: Double = .nan, values: [Float], flags: UInt32 = 0,
                       payloadLength: UInt64? = nil, padding: UInt32 = 0, corruptCRC: Bool = false) -> [UInt8] {
        let body = Array(tag.utf8) + le(flags) + le(step) + le(lr.bitPattern)
            + le(payloadLength ?? UInt64(values.count * 4)) + values.flatMap { le($0.bitPattern) }
        let crc = CRC32.checksum(body) ^ (corruptCRC ? 1 : 0)
        return body + le(crc) + le(padding)
    }

    static func stream(_ header: String, _ records: [[UInt8]], version: UInt32 = 1, magic: [UInt8] = UpdateStreamFormat.magic) -> [UInt8] {
        var json = Array(header.utf8)
        while (16 + json.count) % 8 != 0 { json.append(0x20) }
        return magic + le(version) + le(UInt32(json.count)) + json + records.flatMap { $0 }
    }

    static let header = #"{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[2]}]}"#
    static func tensors(_ list: String) -> String {
        #"{"format":"preclab-updates","delta_dtype":"F32","tensors":"# + list + "}"
    }

    static func safetensors(_ header: String, _ data: [UInt8]) -> [UInt8] {
        le(UInt64(header.utf8.count)) + Array(header.utf8) + data
    }

    static var cases: [BadFile] {
        let step1 = record("STEP", step: 1, lr: 0.1, values: [1, 2])
        let step2 = record("STEP", step: 2, lr: 0.1, values: [1, 2])
        let base = record("BASE", step: 0, values: [0, 0])
        let final2 = record("FINL", step: 2, values: [1, 2])
        let ok = stream(header, [base, step1, step2, final2])  // records at 104, 152, 200, 248
        func patch(_ offset: Int, _ bytes: [UInt8]) -> [UInt8] {
            var copy = ok
            copy.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
            return copy
        }
        let f32 = #""dtype":"F32","shape":[2]"#
        return [
            // Update streams.
            BadFile(name: "magic.bin", bytes: patch(3, [0x58]), fragments: ["offset 3", "wrong magic"]),
            BadFile(name: "version.bin", bytes: stream(header, [step1], version: 7), fragments: ["offset 8", "version 7, expected 1"]),
            BadFile(name: "hlen-big.bin", bytes: patch(12, le(UInt32(16_777_225))), fragments: ["offset 12", "expected 2 to 16777216"]),
            BadFile(name: "hlen-odd.bin", bytes: patch(12, le(UInt32(81))), fragments: ["offset 12", "multiple of 8"]),
            BadFile(name: "hlen-past.bin", bytes: Array(ok[0..<50]), fragments: ["offset 50", "ends inside the header"]),
            BadFile(name: "json.bin", bytes: stream("{\"format\" \"x\"}", [step1]), fragments: ["offset 26", "not valid UTF-8 JSON", "expected ':'"]),
            BadFile(name: "format.bin", bytes: stream(#"{"format":"other","delta_dtype":"F32","tensors":[{"name":"w","shape":[2]}]}"#, [step1]), fragments: ["offset 16", "expected \"preclab-updates\""]),
            BadFile(name: "no-tensors.bin", bytes: stream(#"{"format":"preclab-updates","delta_dtype":"F32"}"#, []), fragments: ["offset 16", "no \"tensors\""]),
            BadFile(name: "no-delta.bin", bytes: stream(#"{"format":"preclab-updates","tensors":[{"name":"w","shape":[2]}]}"#, []), fragments: ["no \"delta_dtype\""]),
            BadFile(name: "delta.bin", bytes: stream(#"{"format":"preclab-updates","delta_dtype":"F16","tensors":[{"name":"w","shape":[2]}]}"#, []), fragments: ["expected \"F32\""]),
            BadFile(name: "empty-tensors.bin", bytes: stream(tensors("[]"), []), fragments: ["'tensors' is empty"]),
            BadFile(name: "dup-name.bin", bytes: stream(tensors(#"[{"name":"w","shape":[1]},{"name":"w","shape":[1]}]"#), []), fragments: ["'w' appears twice"]),
            BadFile(name: "empty-name.bin", bytes: stream(tensors(#"[{"name":"","shape":[1]}]"#), []), fragments: ["empty name"]),
            BadFile(name: "zero-dim.bin", bytes: stream(tensors(#"[{"name":"w","shape":[0]}]"#), []), fragments: ["'w'", "positive integers"]),
            BadFile(name: "neg-dim.bin", bytes: stream(tensors(#"[{"name":"w","shape":[3,-1]}]"#), []), fragments: ["'w'", "positive integers"]),
            BadFile(name: "dims9.bin", bytes: stream(tensors(#"[{"name":"w","shape":[1,1,1,1,1,1,1,1,1]}]"#), []), fragments: ["'w'", "expected 1 to 8"]),
            BadFile(name: "huge.bin", bytes: stream(tensors(#"[{"name":"w","shape":[9223372036854775807,2]}]"#), []), fragments: ["'w'", "2^63"]),
            BadFile(name: "dup-key.bin", bytes: stream(#"{"format":"preclab-updates","format":"preclab-updates"}"#, []), fragments: ["offset 44", "duplicate key"]),
            BadFile(name: "tag.bin", bytes: patch(200, Array("STEQ".utf8)), fragments: ["offset 200", "unknown tag 'STEQ', expected BASE, STEP or FINL"]),
            BadFile(name: "flags.bin", bytes: patch(204, [0, 1]), fragments: ["offset 204", "flags are 256, expected 0"]),
            BadFile(name: "plen.bin", bytes: patch(224, [4]), fragments: ["offset 224", "payload_length is 4, expected 8"]),
            BadFile(name: "crc.bin", bytes: stream(header, [step1, record("STEP", step: 2, values: [1, 2], corruptCRC: true)]), fragments: ["offset 192", "CRC-32 mismatch", "record #1"]),
            BadFile(name: "payload-bit.bin", bytes: patch(235, [0x41]), fragments: ["offset 240", "CRC-32 mismatch"]),
            BadFile(name: "padding.bin", bytes: stream(header, [record("STEP", step: 1, values: [1, 2], padding: 9)]), fragments: ["offset 148", "padding is 9, expected 0"]),
            BadFile(name: "base-late.bin", bytes: stream(header, [step1, base]), fragments: ["offset 152", "BASE must come first"]),
            BadFile(name: "base-twice.bin", bytes: stream(header, [base, base]), fragments: ["offset 152", "second BASE"]),
            BadFile(name: "final-early.bin", bytes: stream(header, [step1, record("FINL", step: 1, values: [1, 2]), step2]), fragments: ["offset 200", "after FINL"]),
            BadFile(name: "final-step.bin", bytes: stream(header, [step1, step2, record("FINL", step: 1, values: [1, 2])]), fragments: ["offset 208", "FINL step is 1, expected 2"]),
            BadFile(name: "steps-equal.bin", bytes: stream(header, [step2, step2]), fragments: ["offset 160", "step 2 does not increase"]),
            BadFile(name: "steps-down.bin", bytes: stream(header, [step2, step1]), fragments: ["offset 160", "expected a step greater than 2"]),
            BadFile(name: "truncated.bin", bytes: Array(ok.dropLast(10)), fragments: ["offset 248", "file ends inside record #3", "2 complete steps"]),
            BadFile(name: "truncated-head.bin", bytes: Array(ok[0..<(200 + 20)]), fragments: ["offset 200", "file ends inside record #2"]),
            // safetensors.
            BadFile(name: "short.safetensors", bytes: [1, 0, 0], fragments: ["3 bytes, too small"]),
            BadFile(name: "n-huge.safetensors", bytes: Self.le(UInt64(200_000_000)) + Array("{}".utf8), fragments: ["offset 0", "exceeds", "100000000"]),
            BadFile(name: "n-past.safetensors", bytes: Self.le(UInt64(64)) + Array("{}".utf8), fragments: ["offset 0", "past the end of the file"]),
            BadFile(name: "json.safetensors", bytes: safetensors("{\"a\":", []), fragments: ["offset 13", "not valid UTF-8 JSON"]),
            BadFile(name: "utf8.safetensors", bytes: Self.le(UInt64(4)) + [0x22, 0xC3, 0x28, 0x22], fragments: ["offset 9", "UTF-8"]),
            BadFile(name: "dup.safetensors", bytes: safetensors(#"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, [0, 0]), fragments: ["duplicate key \"w\""]),
            BadFile(name: "hole.safetensors", bytes: safetensors(#"{"a":{\#(f32),"data_offsets":[0,8]},"b":{\#(f32),"data_offsets":[12,20]}}"#, Array(repeating: 0, count: 20)), fragments: ["tensor 'b'", "leaves a hole", "start at 8"]),
            BadFile(name: "overlap.safetensors", bytes: safetensors(#"{"a":{\#(f32),"data_offsets":[0,8]},"b":{\#(f32),"data_offsets":[6,14]}}"#, Array(repeating: 0, count: 14)), fragments: ["tensor 'b'", "overlaps"]),
            BadFile(name: "beyond.safetensors", bytes: safetensors(#"{"a":{\#(f32),"data_offsets":[0,8]}}"#, [0, 0]), fragments: ["tensor 'a'", "past the end"]),
            BadFile(name: "size.safetensors", bytes: safetensors(#"{"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,4]}}"#, [0, 0, 0, 0]), fragments: ["tensor 'a'", "hold 4 bytes, expected 6"]),
            BadFile(name: "overflow.safetensors", bytes: safetensors(#"{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#, []), fragments: ["tensor 'a'", "overflows"]),
            BadFile(name: "tail.safetensors", bytes: safetensors(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, [0, 0, 0]), fragments: ["buffer is 3 bytes", "end of the file"]),
            BadFile(name: "dtype.safetensors", bytes: safetensors(#"{"a":{"dtype":"Q8","shape":[1],"data_offsets":[0,1]}}"#, [0]), fragments: ["tensor 'a'", "unknown dtype 'Q8'"]),
            BadFile(name: "neg-shape.safetensors", bytes: safetensors(#"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}"#, [0]), fragments: ["tensor 'a'", "non-negative"]),
            BadFile(name: "offsets.safetensors", bytes: safetensors(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}}"#, [0]), fragments: ["tensor 'a'", "data_offsets"]),
            // npy.
            BadFile(name: "bad.npy", bytes: [0x93] + Array("NUMPY".utf8) + [1, 0, 8, 0] + Array("{'descr'".utf8), fragments: ["offset 18", "invalid .npy header"]),
        ]
    }

    func testEveryMalformedFileExitsOneWithALocatedMessage() throws {
        let directory = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases = Self.cases
        XCTAssertGreaterThanOrEqual(cases.count, 30)
        for bad in cases {
            let path = directory.appendingPathComponent(bad.name).path
            try Data(bad.bytes).write(to: URL(fileURLWithPath: path))
            let result = try CLIRunner.run(["inspect", path])
            XCTAssertEqual(result.status, 1, "\(bad.name): \(result.stderr)")
            XCTAssertEqual(result.stdout, "", bad.name)
            XCTAssertTrue(result.stderr.contains(path), "\(bad.name): \(result.stderr)")
            for fragment in bad.fragments {
                XCTAssertTrue(result.stderr.contains(fragment), "\(bad.name): '\(fragment)' not in: \(result.stderr)")
            }
            XCTAssertFalse(result.stderr.contains("Fatal error") || result.stderr.contains("Stack dump"), bad.name)
        }
    }

    /// The malformed checkpoints through `preclab cast`: exit 1, the same located
    /// message, and no output file (nor temporary file) left behind.
    func testCastOfMalformedCheckpointsLeavesNoOutput() throws {
        let directory = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for bad in Self.cases where bad.name.hasSuffix(".safetensors") {
            let path = directory.appendingPathComponent(bad.name).path
            try Data(bad.bytes).write(to: URL(fileURLWithPath: path))
            let output = directory.appendingPathComponent("out.safetensors").path
            let result = try CLIRunner.run(["cast", path, output, "--dtype", "bf16"])
            XCTAssertEqual(result.status, 1, "\(bad.name): \(result.stderr)")
            for fragment in bad.fragments {
                XCTAssertTrue(result.stderr.contains(fragment), "\(bad.name): '\(fragment)' not in: \(result.stderr)")
            }
            let left = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("out.") }
            XCTAssertEqual(left, [], bad.name)
        }
    }

    /// The Python reader (tools/preclab_record.py) must refuse every malformed stream
    /// too, at the same byte offset.
    func testPythonReaderRefusesTheSameStreams() throws {
        let directory = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let streams = Self.cases.filter { $0.name.hasSuffix(".bin") }
        for bad in streams {
            try Data(bad.bytes).write(to: directory.appendingPathComponent(bad.name))
        }
        let script = """
        import sys, os, preclab_record as pr
        for name in sorted(os.listdir(sys.argv[1])):
            try:
                with pr.UpdateStreamReader(os.path.join(sys.argv[1], name)) as reader:
                    for _ in reader.records():
                        pass
                print(name + "\\tACCEPTED")
            except pr.StreamFormatError as error:
                print(name + "\\t" + str(error))
        """
        try PythonOracle.require("numpy")
        let output = try PythonOracle.run(script, [directory.path])
        var verdicts: [String: String] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: "\t", maxSplits: 1).map(String.init)
            if parts.count == 2 { verdicts[parts[0]] = parts[1] }
        }
        for bad in streams {
            let verdict = verdicts[bad.name] ?? "missing"
            XCTAssertNotEqual(verdict, "ACCEPTED", bad.name)
            // Python's json module does not say where a duplicate key is.
            for fragment in bad.fragments where fragment.hasPrefix("offset ") && !bad.fragments.contains("duplicate key") {
                XCTAssertTrue(verdict.contains(fragment + ":"), "\(bad.name): Python said '\(verdict)', expected \(fragment)")
            }
        }
    }

    func testAllowTruncatedKeepsCompleteSteps() throws {
        let directory = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let bad = Self.cases.first { $0.name == "truncated.bin" }!
        let path = directory.appendingPathComponent(bad.name).path
        try Data(bad.bytes).write(to: URL(fileURLWithPath: path))
        let result = try CLIRunner.run(["inspect", "--allow-truncated", path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("steps: 2 (first 1, last 2)"), result.stdout)
        XCTAssertTrue(result.stdout.contains("truncated"), result.stdout)
        XCTAssertTrue(result.stdout.contains("FINL: absent"), result.stdout)
    }
}
