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

extension Fixtures {
    /// The hand-checked pair of the compare tests, a 2x2 matrix and a 4-vector in bf16:
    /// W0 = diag(3, 4), W1 = diag(3, 5) (exact in bf16); the vector changes by one bf16
    /// ulp at 1 (2^-7) in one of four entries. With k = rank = 1 and α = 0.5:
    /// - M = {3}: sparsity 3/4.
    /// - σ(W0) = (4, 3), σ(W1) = (5, 3): NSS = 1/5.
    /// - top-1 subspaces are e2 for both: angles 0.
    /// - rank-1 reconstruction of W0 = 4 e2 e2ᵀ, |.| = [0, 0, 0, 4]: top 2 = {3, then
    ///   the tie at 0 goes to index 0}; M ⊂ it: principal overlap 1.
    /// - bottom 2 of |W0| = [3, 0, 0, 4]: {1, 2}: low overlap 0.
    public static func writeHandCheckedPair(base: String, tuned: String) throws -> (matrix: String, vector: String) {
        let q = "model.layers.0.self_attn.q_proj.weight", norm = "model.layers.0.input_layernorm.weight"
        try write(base, [
            FixtureTensor(name: q, dtype: .bf16, shape: [2, 2], values: [3, 0, 0, 4]),
            FixtureTensor(name: norm, dtype: .bf16, shape: [4], values: [1, 1, 1, 1]),
        ])
        try write(tuned, [
            FixtureTensor(name: q, dtype: .bf16, shape: [2, 2], values: [3, 0, 0, 5]),
            FixtureTensor(name: norm, dtype: .bf16, shape: [4], values: [1, 1, 1, 1 + 0x1p-7]),
        ])
        return (q, norm)
    }
}
