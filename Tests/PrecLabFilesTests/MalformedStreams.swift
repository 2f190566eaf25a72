import Foundation
@testable import PrecLabFiles

/// Malformed update streams, each breaking one rule of the spec, with the message
/// fragments the reader must produce (offset and what was expected). Derived by hand
/// from the layout in update-stream-v1.md; record offsets of the valid stream are
/// BASE 104, STEP 152, FINL 200 (each record 48 bytes).
struct MalformedStream {
    let name: String
    let bytes: [UInt8]
    let fragments: [String]
}

enum MalformedStreams {
    static let valid = UpdateStreamTests.pythonStream

    /// A stream with the given header JSON and records built per the spec.
    static func stream(header: String, records: [[UInt8]] = [], headerLengthOverride: UInt32? = nil) -> [UInt8] {
        var json = Array(header.utf8)
        while (16 + json.count) % 8 != 0 { json.append(0x20) }
        return UpdateStreamFormat.magic + littleEndianBytes(UInt32(1))
            + littleEndianBytes(headerLengthOverride ?? UInt32(json.count)) + json + records.flatMap { $0 }
    }

    /// A record with a correct CRC unless one is given.
    static func record(_ tag: String, step: UInt64, lr: Double = .nan, values: [Float], flags: UInt32 = 0,
                       payloadLength: UInt64? = nil, crc: UInt32? = nil, padding: UInt32 = 0) -> [UInt8] {
        let body = Array(tag.utf8) + littleEndianBytes(flags) + littleEndianBytes(step)
            + littleEndianBytes(lr.bitPattern) + littleEndianBytes(payloadLength ?? UInt64(values.count * 4))
            + floatBytes(values)
        return body + littleEndianBytes(crc ?? CRC32.checksum(body)) + littleEndianBytes(padding)
    }

    static let header1 = #"{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[2]}]}"#

    static func withHeader(_ json: String) -> [UInt8] {
        stream(header: json, records: [record("STEP", step: 1, values: [0, 0])])
    }

    static func patched(_ offset: Int, _ bytes: [UInt8]) -> [UInt8] {
        var copy = valid
        copy.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
        return copy
    }

    static var all: [MalformedStream] {
        let base = record("BASE", step: 0, values: [1, 2])
        let step1 = record("STEP", step: 1, lr: 0.1, values: [1, 2])
        let step2 = record("STEP", step: 2, lr: 0.1, values: [1, 2])
        let final2 = record("FINL", step: 2, values: [1, 2])
        return [
            MalformedStream(name: "empty", bytes: [], fragments: ["offset 0", "preamble"]),
            MalformedStream(name: "wrong-magic", bytes: patched(1, [0x51]), fragments: ["offset 1", "wrong magic"]),
            MalformedStream(name: "safetensors-not-stream", bytes: Array("\u{8}\0\0\0\0\0\0\0{}      ".utf8), fragments: ["offset 0", "wrong magic"]),
            MalformedStream(name: "short-preamble", bytes: Array(valid[0..<12]), fragments: ["offset 12", "preamble"]),
            MalformedStream(name: "version-2", bytes: patched(8, [2]), fragments: ["offset 8", "version 2, expected 1"]),
            MalformedStream(name: "header-too-long", bytes: patched(12, littleEndianBytes(UInt32(16_777_224))), fragments: ["offset 12", "out of range"]),
            MalformedStream(name: "header-too-short", bytes: patched(12, littleEndianBytes(UInt32(0))), fragments: ["offset 12", "out of range"]),
            MalformedStream(name: "header-unaligned", bytes: patched(12, littleEndianBytes(UInt32(87))), fragments: ["offset 12", "multiple of 8"]),
            MalformedStream(name: "header-past-end", bytes: Array(valid[0..<60]), fragments: ["offset 60", "ends inside the header"]),
            MalformedStream(name: "invalid-json", bytes: withHeader(#"{"format":"preclab-updates",}"#), fragments: ["offset 44", "not valid UTF-8 JSON"]),
            MalformedStream(name: "invalid-utf8", bytes: stream(header: "{\"format\":\"\u{FF}\"}".replacingOccurrences(of: "\u{FF}", with: "x")).enumerated().map { $0.offset == 27 ? 0xFF : $0.element }, fragments: ["offset 27", "UTF-8"]),
            MalformedStream(name: "json-array", bytes: withHeader("[]"), fragments: ["offset 16", "JSON object"]),
            MalformedStream(name: "missing-format", bytes: withHeader(#"{"delta_dtype":"F32","tensors":[{"name":"w","shape":[2]}]}"#), fragments: ["offset 16", "no \"format\""]),
            MalformedStream(name: "wrong-format", bytes: withHeader(#"{"format":"safetensors","delta_dtype":"F32","tensors":[{"name":"w","shape":[2]}]}"#), fragments: ["offset 16", "expected \"preclab-updates\""]),
            MalformedStream(name: "missing-delta", bytes: withHeader(#"{"format":"preclab-updates","tensors":[{"name":"w","shape":[2]}]}"#), fragments: ["no \"delta_dtype\""]),
            MalformedStream(name: "delta-bf16", bytes: withHeader(#"{"format":"preclab-updates","delta_dtype":"BF16","tensors":[{"name":"w","shape":[2]}]}"#), fragments: ["delta_dtype is \"BF16\", expected \"F32\""]),
            MalformedStream(name: "missing-tensors", bytes: withHeader(#"{"format":"preclab-updates","delta_dtype":"F32"}"#), fragments: ["no \"tensors\""]),
            MalformedStream(name: "empty-tensors", bytes: withHeader(#"{"format":"preclab-updates","delta_dtype":"F32","tensors":[]}"#), fragments: ["'tensors' is empty"]),
            MalformedStream(name: "empty-name", bytes: withHeader(#"{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"","shape":[2]}]}"#), fragments: ["empty name"]),
            MalformedStream(name: "duplicate-name", bytes: withHeader(#"{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[1]},{"name":"w","shape":[1]}]}"#), fragments: ["'w' appears twice"]),
            MalformedStream(name: "duplicate-key", bytes: withHeader(#"{"format":"preclab-updates","format":"preclab-updates"}"#), fragments: ["offset 44", "duplicate key \"format\""]),
            MalformedStream(name: "zero-dim", bytes: withHeader(#"{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[2,0]}]}"#), fragments: ["'w'", "positive integers"]),
            MalformedStream(name: "negative-dim", bytes: withHeader(#"{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[-2]}]}"#), fragments: ["'w'", "positive integers"]),
            MalformedStream(name: "float-dim", bytes: withHeader(#"{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[2.0]}]}"#), fragments: ["'w'", "positive integers"]),
            MalformedStream(name: "scalar-shape", bytes: withHeader(#"{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[]}]}"#), fragments: ["'w'", "0 dimensions, expected 1 to 8"]),
            MalformedStream(name: "nine-dims", bytes: withHeader(#"{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[1,1,1,1,1,1,1,1,1]}]}"#), fragments: ["'w'", "9 dimensions"]),
            MalformedStream(name: "63-bit", bytes: withHeader(#"{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[4294967296,1073741824]}]}"#), fragments: ["'w'", "2^63"]),
            MalformedStream(name: "dtype-number", bytes: withHeader(#"{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[2],"dtype":16}]}"#), fragments: ["'w'", "\"dtype\""]),
            // Issue 11: the storage dtype must be a safetensors dtype name.
            MalformedStream(name: "dtype-unknown", bytes: withHeader(#"{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[2],"dtype":"XYZ"}]}"#), fragments: ["offset 16", "'w'", "dtype \"XYZ\" is not a safetensors dtype name"]),
            MalformedStream(name: "dtype-lowercase", bytes: withHeader(#"{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[2],"dtype":"bf16"}]}"#), fragments: ["'w'", "dtype \"bf16\""]),
            MalformedStream(name: "metadata-number", bytes: withHeader(#"{"format":"preclab-updates","delta_dtype":"F32","tensors":[{"name":"w","shape":[2]}],"metadata":{"lr":0.1}}"#), fragments: ["metadata 'lr'", "expected a string"]),
            MalformedStream(name: "unknown-tag", bytes: patched(152, Array("STOP".utf8)), fragments: ["offset 152", "unknown tag 'STOP'"]),
            MalformedStream(name: "lowercase-tag", bytes: patched(104, Array("base".utf8)), fragments: ["offset 104", "unknown tag"]),
            MalformedStream(name: "flags", bytes: patched(156, [1]), fragments: ["offset 156", "flags are 1, expected 0"]),
            MalformedStream(name: "payload-length", bytes: patched(176, [12]), fragments: ["offset 176", "payload_length is 12, expected 8"]),
            MalformedStream(name: "crc", bytes: patched(184, [0x01]), fragments: ["offset 192", "CRC-32 mismatch"]),
            MalformedStream(name: "crc-field", bytes: patched(192, [0x00]), fragments: ["offset 192", "CRC-32 mismatch"]),
            MalformedStream(name: "padding", bytes: patched(196, [7]), fragments: ["offset 196", "padding is 7, expected 0"]),
            MalformedStream(name: "base-not-first", bytes: stream(header: header1, records: [step1, base]), fragments: ["offset 152", "BASE must come first"]),
            MalformedStream(name: "two-bases", bytes: stream(header: header1, records: [base, base]), fragments: ["offset 152", "second BASE"]),
            MalformedStream(name: "step-after-final", bytes: stream(header: header1, records: [step1, step2, final2, record("STEP", step: 3, values: [1, 2])]), fragments: ["offset 248", "after FINL"]),
            MalformedStream(name: "two-finals", bytes: stream(header: header1, records: [step2, final2, final2]), fragments: ["offset 200", "after FINL"]),
            MalformedStream(name: "final-step", bytes: stream(header: header1, records: [step1, step2, record("FINL", step: 3, values: [1, 2])]), fragments: ["offset 208", "FINL step is 3, expected 2"]),
            MalformedStream(name: "repeated-step", bytes: stream(header: header1, records: [step1, step1]), fragments: ["offset 160", "step 1 does not increase"]),
            MalformedStream(name: "decreasing-step", bytes: stream(header: header1, records: [step2, step1]), fragments: ["offset 160", "expected a step greater than 2"]),
            MalformedStream(name: "step-not-after-base", bytes: stream(header: header1, records: [record("BASE", step: 5, values: [1, 2]), step2]), fragments: ["offset 160", "greater than 5"]),
            MalformedStream(name: "truncated-record", bytes: Array(valid.dropLast(1)), fragments: ["offset 200", "ends inside record #2"]),
            MalformedStream(name: "truncated-in-frame", bytes: Array(valid[0..<170]), fragments: ["offset 152", "ends inside record #1"]),
        ]
    }
}
