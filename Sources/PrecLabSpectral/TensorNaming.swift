/// The role of a weight matrix in a transformer block, parsed from its name.
public enum MatrixType: String, Sendable, CaseIterable, Comparable, Codable {
    case q, k, v, o, gate, up, down, others

    public static func < (lhs: MatrixType, rhs: MatrixType) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// Layer index and matrix type of a checkpoint tensor name such as
/// `model.layers.3.self_attn.q_proj.weight`, and the order of rows in reports.
public struct TensorName: Sendable, Equatable, Comparable, Codable {
    public let name: String
    /// The block index: the number after `layers`, `layer`, `h`, `blocks` or `block`
    /// (else the first all-digit component); nil for embeddings, norms, heads.
    public let layer: Int?
    public let type: MatrixType

    /// Name components (lowercased) that identify each type. Fused projections
    /// (`qkv_proj`, `query_key_value`, `c_attn`, `gate_up_proj`) are `others`.
    static let patterns: [(MatrixType, Set<String>)] = [
        (.q, ["q_proj", "query", "wq", "q_lin"]),
        (.k, ["k_proj", "key", "wk", "k_lin"]),
        (.v, ["v_proj", "value", "wv", "v_lin"]),
        (.o, ["o_proj", "out_proj", "wo", "out_lin", "dense"]),
        (.gate, ["gate_proj", "w1", "gate"]),
        (.up, ["up_proj", "w3", "fc1", "c_fc", "dense_h_to_4h"]),
        (.down, ["down_proj", "w2", "fc2", "dense_4h_to_h"]),
    ]

    /// BERT-style blocks name three matrices `dense`: `attention.output.dense` (o, found
    /// by the patterns), `intermediate.dense` (up) and the layer's own `output.dense`
    /// (down). Nil for every other name.
    static func bertFeedForwardType(_ parts: [String]) -> MatrixType? {
        guard let dense = parts.firstIndex(of: "dense"), dense > 0 else { return nil }
        switch parts[dense - 1] {
        case "intermediate": return .up
        case "output" where dense < 2 || parts[dense - 2] != "attention": return .down
        default: return nil
        }
    }

    public init(_ name: String) {
        self.name = name
        let parts = name.lowercased().split(separator: ".").map(String.init)
        var layer: Int? = nil
        for (index, part) in parts.enumerated() where index > 0 {
            if ["layers", "layer", "h", "blocks", "block"].contains(parts[index - 1]),
               !part.isEmpty, part.allSatisfy(\.isASCII), let value = Int(part) {
                layer = value
                break
            }
        }
        if layer == nil {
            layer = parts.first { !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }.flatMap { Int($0) }
        }
        self.layer = layer
        var type = TensorName.bertFeedForwardType(parts) ?? .others
        if type == .others {
            for (candidate, names) in TensorName.patterns where parts.contains(where: names.contains) {
                type = candidate
                break
            }
        }
        // GPT-2 style `c_proj` is o in attention and down in the MLP.
        if type == .others, parts.contains("c_proj") {
            type = parts.contains("mlp") ? .down : .o
        }
        self.type = type
    }

    /// Report order: embeddings (no layer, name contains "embed"), then layers
    /// ascending with q, k, v, o, gate, up, down, others inside a layer, then the
    /// remaining unlayered tensors; the name breaks ties.
    public static func < (lhs: TensorName, rhs: TensorName) -> Bool {
        lhs.sortKey < rhs.sortKey
    }

    private var sortKey: SortKey {
        let group: Int
        if let _ = layer { group = 1 } else { group = name.lowercased().contains("embed") ? 0 : 2 }
        return SortKey(group: group, layer: layer ?? 0, type: type, name: name)
    }

    private struct SortKey: Comparable {
        let group: Int, layer: Int, type: MatrixType, name: String
        static func < (a: SortKey, b: SortKey) -> Bool {
            if a.group != b.group { return a.group < b.group }
            if a.layer != b.layer { return a.layer < b.layer }
            if a.type != b.type { return a.type < b.type }
            return a.name < b.name
        }
    }
}
