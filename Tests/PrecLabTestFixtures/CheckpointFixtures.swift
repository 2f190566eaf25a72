import Foundation
import PrecLabFiles
import PrecLabFormats
import PrecLabSupport

/// Safetensors files written by the analysis and CLI tests, with values chosen by
/// hand (so expectations are derived independently of preclab's own computations).
public struct FixtureTensor {
    public let name: String
    public let dtype: TensorDType
    public let shape: [Int]
    /// Row-major values; stored exactly when representable in `dtype`.
    public let values: [Double]

    public init(name: String, dtype: TensorDType, shape: [Int], values: [Double]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.values = values
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        func append(_ code: UInt64, _ width: Int) {
            for byte in 0..<width { out.append(UInt8(truncatingIfNeeded: code >> UInt64(8 * byte))) }
        }
        for value in values {
            switch dtype {
            case .bf16: append(UInt64(FloatFormat.bf16.encode(value)), 2)
            case .f16: append(UInt64(FloatFormat.fp16.encode(value)), 2)
            case .f32: append(UInt64(Float(value).bitPattern), 4)
            case .f64: append(value.bitPattern, 8)
            case .i64: append(UInt64(bitPattern: Int64(value)), 8)
            default: fatalError("fixture dtype \(dtype) not supported")
            }
        }
        return out
    }
}

public enum Fixtures {
    public static func write(_ path: String, _ tensors: [FixtureTensor]) throws {
        try SafetensorsWriter.write(to: path, tensors: tensors.map {
            (SafetensorsTensorSpec(name: $0.name, dtype: $0.dtype, shape: $0.shape), $0.bytes)
        }, force: true)
    }

    /// A sharded checkpoint in `directory`: one file per group plus the index JSON.
    public static func writeSharded(_ directory: String, _ groups: [[FixtureTensor]]) throws {
        var weightMap: [(String, String)] = []
        for (index, group) in groups.enumerated() {
            let file = "model-\(String(format: "%05d", index + 1))-of-\(String(format: "%05d", groups.count)).safetensors"
            try write(directory + "/" + file, group)
            weightMap += group.map { ($0.name, file) }
        }
        let index = JSONValue.object(JSONObject([
            ("metadata", .object(JSONObject([("total_size", .int(0))]))),
            ("weight_map", .object(JSONObject(weightMap.map { ($0.0, JSONValue.string($0.1)) }))),
        ]))
        try index.serialized(indent: 2).write(toFile: directory + "/model.safetensors.index.json",
                                              atomically: true, encoding: .utf8)
    }

    /// Parses a JSON file written by a command.
    public static func readJSON(_ path: String) throws -> JSONValue {
        try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    /// A reproducible pseudo-random value in [-1, 1) (xorshift; independent of preclab).
    public struct Random {
        public var state: UInt64
        public init(state: UInt64) { self.state = state }
        public mutating func next() -> Double {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Double(state >> 11) * 0x1p-52 - 1
        }
    }
}

extension JSONValue {
    public subscript(key: String) -> JSONValue? { objectValue?[key] }
    public subscript(index: Int) -> JSONValue? { arrayValue.flatMap { index < $0.count ? $0[index] : nil } }
}
