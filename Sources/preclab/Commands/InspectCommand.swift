import PrecLabFiles
import PrecLabSupport

/// `preclab inspect FILE...`: what a checkpoint, array file or update stream holds,
/// after validating it completely (a corrupt file is an error, not a partial listing).
enum InspectCommand: Command {
    static let name = "inspect"
    static let summary = "show the tensors of safetensors/npy/npz files and update streams (validates them)"
    static let help = """
    usage: preclab inspect FILE|DIR... [--json] [--allow-truncated] [--no-crc] [--npy-v2-as-bf16]

    Detects each file's kind from its content: update stream (preclab-updates v1),
    .npy, .npz, a safetensors index JSON, a directory holding a (sharded) checkpoint,
    or a .safetensors file. Prints the tensors (name, dtype, shape, size) in natural
    order; for update streams also the step count, first/last step, gaps, learning-rate
    range, BASE/FINL presence and the CRC verdict.

    options:
      --json              print JSON (an object per file; an array when several)
      --allow-truncated   keep the complete records of a stream cut short (default: error)
      --no-crc            skip the CRC-32 check of stream records
      --npy-v2-as-bf16    read numpy 'V2' arrays (ml_dtypes bfloat16) as BF16

    exit status: 0 when every file is valid, 1 with the exact problem otherwise.
    """
    static let options: [OptionSpec] = [
        .flag("--json"), .flag("--allow-truncated"), .flag("--no-crc"), .flag("--npy-v2-as-bf16"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let paths = try arguments.requireSomePositionals(names: "one or more files or directories")
        let json = arguments.flag("--json")
        let streamOptions = UpdateStreamReader.Options(verifyCRC: !arguments.flag("--no-crc"),
                                                       allowTruncated: arguments.flag("--allow-truncated"))
        var reports: [JSONValue] = []
        for path in paths {
            let report = try inspect(path, streamOptions: streamOptions, bf16: arguments.flag("--npy-v2-as-bf16"))
            if json {
                reports.append(.object(report.json))
            } else {
                Console.out(report.text)
            }
        }
        if json {
            Console.out((reports.count == 1 ? reports[0] : .array(reports)).serialized(indent: 2))
        }
    }

    struct TensorRow {
        let name: String
        let dtype: String
        let shape: [Int]
        let bytes: Int?
        let note: String?
    }

    struct Report {
        var path: String
        var kind: FileKind
        var lines: [String] = []
        var rows: [TensorRow] = []
        var json = JSONObject()
        var metadata: [(key: String, value: String)] = []

        var text: String {
            var output = ["\(path): \(lines.first ?? "")"] + lines.dropFirst().map { "  " + $0 }
            if !metadata.isEmpty {
                output.append("  metadata: " + metadata.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
            }
            if !rows.isEmpty {
                let table: [[String]] = [["name", "dtype", "shape", "size"]] + rows.map {
                    [$0.name, $0.dtype, "[" + $0.shape.map(String.init).joined(separator: ", ") + "]",
                     ($0.bytes.map(byteText) ?? "-") + ($0.note.map { " " + $0 } ?? "")]
                }
                let widths = (0..<4).map { column in table.map { $0[column].count }.max() ?? 0 }
                for row in table {
                    let cells = row.enumerated().map { column, cell in
                        column == 3 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
                    }
                    output.append("  " + cells.joined(separator: "  "))
                }
            }
            return output.joined(separator: "\n")
        }
    }

    static func inspect(_ path: String, streamOptions: UpdateStreamReader.Options, bf16: Bool) throws -> Report {
        let kind = try FileKind.detect(path)
        var report = Report(path: path, kind: kind)
        report.json["path"] = .string(path)
        report.json["kind"] = .string(kind.rawValue)
        switch kind {
        case .updateStream:
            try inspectStream(path, options: streamOptions, into: &report)
        case .npy:
            let array = try NpyArray(path: path, bfloat16ForV2: bf16)
            report.lines.append("numpy .npy v\(array.version.major).\(array.version.minor), descr '\(array.descr)'\(array.fortranOrder ? ", Fortran order" : "")")
            report.rows = [TensorRow(name: "(array)", dtype: array.dtype.name, shape: array.shape,
                                     bytes: array.storedBytes.count, note: nil)]
            report.json["descr"] = .string(array.descr)
            report.json["fortran_order"] = .bool(array.fortranOrder)
        case .npz:
            let archive = try NpzArchive(path: path)
            for entry in archive.entries {
                let array = try archive.describe(entry, bfloat16ForV2: bf16)
                report.rows.append(TensorRow(name: entry.arrayName, dtype: array.dtype.name, shape: array.shape,
                                             bytes: array.dataBytes,
                                             note: entry.method == 8 ? "(deflated)" : nil))
            }
            report.rows.sort { naturalOrder($0.name, $1.name) }
            report.lines.append("numpy .npz archive, \(archive.entries.count) arrays, CRC-32 verified")
        case .checkpointIndex, .directory, .safetensors:
            let checkpoint = try Checkpoint.open(path)
            let form: String
            if checkpoint.indexPath != nil {
                form = "sharded safetensors checkpoint (\(checkpoint.shards.count) shards)"
            } else if checkpoint.shards.count > 1 {
                form = "safetensors checkpoint (\(checkpoint.shards.count) files)"
            } else {
                form = "safetensors"
            }
            report.lines.append("\(form), \(checkpoint.tensors.count) tensors, \(byteText(checkpoint.totalBytes)) of data")
            if checkpoint.shards.count > 1 {
                report.json["shards"] = .array(checkpoint.shards.map { .string($0.path) })
            }
            let counts = Dictionary(grouping: checkpoint.tensors, by: { $0.dtype.name }).mapValues(\.count)
            if !counts.isEmpty {
                report.lines.append("dtypes: " + counts.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", "))
            }
            report.metadata = checkpoint.metadata
            report.rows = checkpoint.tensors.map {
                TensorRow(name: $0.name, dtype: $0.dtype.name, shape: $0.shape, bytes: $0.info.byteCount,
                          note: checkpoint.shards.count > 1 ? "(\(lastComponent(checkpoint.shards[$0.shardIndex].path)))" : nil)
            }
            report.json["total_bytes"] = .int(checkpoint.totalBytes)
        }
        if !report.metadata.isEmpty {
            report.json["metadata"] = .object(JSONObject(report.metadata.map { ($0.key, JSONValue.string($0.value)) }))
        }
        report.json["tensors"] = .array(report.rows.map { row in
            var object = JSONObject([("name", .string(row.name)), ("dtype", row.dtype == "-" ? .null : .string(row.dtype)),
                                     ("shape", .array(row.shape.map { .int($0) }))])
            if let bytes = row.bytes { object["bytes"] = .int(bytes) }
            return .object(object)
        })
        return report
    }

    static func inspectStream(_ path: String, options: UpdateStreamReader.Options, into report: inout Report) throws {
        let reader = try UpdateStreamReader(path: path, options: options)
        let summary = try reader.summarize()
        let header = reader.header
        report.lines.append("update stream v1, \(header.tensors.count) tensors, \(header.totalElements) values (\(byteText(header.payloadLength))) per record")
        var steps = "steps: \(summary.stepCount)"
        if let first = summary.firstStep, let last = summary.lastStep {
            steps += " (first \(first), last \(last))"
        }
        steps += summary.gapCount == 0 ? ", no gaps"
            : ", \(summary.gapCount) gap\(summary.gapCount == 1 ? "" : "s") (\(summary.missingSteps) step\(summary.missingSteps == 1 ? "" : "s") missing, largest stride \(summary.largestStride)): per-step rounding can only be approximated on replay"
        report.lines.append(steps)
        var rates = "learning rate: "
        if let low = summary.learningRateMin, let high = summary.learningRateMax {
            rates += low == high ? "\(low)" : "\(low) .. \(high)"
        } else {
            rates += "unknown"
        }
        if summary.unknownLearningRates > 0, summary.learningRateMin != nil {
            rates += " (\(summary.unknownLearningRates) steps unknown)"
        }
        report.lines.append(rates)
        report.lines.append("BASE: " + (summary.baseStep.map { "present (step \($0))" } ?? "absent (base weights must come from a checkpoint)")
                            + "; FINL: " + (summary.finalStep.map { "present (step \($0))" } ?? "absent"))
        report.lines.append(options.verifyCRC ? "CRC-32: all \(summary.recordCount) records verified" : "CRC-32: not checked (--no-crc)")
        if let cut = summary.truncatedAt {
            report.lines.append("truncated: the last \(summary.truncatedBytes) bytes (an incomplete record at byte \(cut)) were ignored; \(summary.stepCount) complete steps kept")
        }
        report.metadata = header.metadata
        report.rows = header.tensors.map {
            TensorRow(name: $0.name, dtype: $0.dtype ?? "-", shape: $0.shape, bytes: $0.elementCount * 4, note: "per record (F32)")
        }
        report.json["records"] = .int(summary.recordCount)
        report.json["steps"] = .int(summary.stepCount)
        report.json["first_step"] = summary.firstStep.map { .integer(Int64(clamping: $0)) } ?? .null
        report.json["last_step"] = summary.lastStep.map { .integer(Int64(clamping: $0)) } ?? .null
        report.json["gaps"] = .int(summary.gapCount)
        report.json["missing_steps"] = .integer(Int64(clamping: summary.missingSteps))
        report.json["largest_stride"] = .integer(Int64(clamping: summary.largestStride))
        report.json["learning_rate_min"] = summary.learningRateMin.map(JSONValue.finite) ?? .null
        report.json["learning_rate_max"] = summary.learningRateMax.map(JSONValue.finite) ?? .null
        report.json["has_base"] = .bool(summary.hasBase)
        report.json["has_final"] = .bool(summary.hasFinal)
        report.json["crc"] = .string(options.verifyCRC ? "verified" : "not checked")
        report.json["truncated"] = .bool(summary.isTruncated)
        if summary.isTruncated { report.json["truncated_bytes"] = .int(summary.truncatedBytes) }
    }
}

/// Bytes as a short human-readable size.
func byteText(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
    if unit == 0 { return "\(bytes) B" }
    return String(Int((value * 10).rounded()) / 10) + "." + String(Int((value * 10).rounded()) % 10) + " " + units[unit]
}

func lastComponent(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}
