import PrecLabSupport

/// Which null model `--null` replays beside the recorded stream: the same updates at
/// shuffled positions, so that whatever the real run's visible mask owes to *where* the
/// updates landed disappears, while everything owed to their sizes and to the storage
/// precision stays.
public enum NullModelKind: String, Sendable, CaseIterable, Codable {
    /// One permutation of all positions of each tensor.
    case permute
    /// Each row's entries permuted among themselves (keeps every row's update set).
    case permuteRows = "permute-rows"
    /// Each column's entries permuted among themselves (keeps every column's set).
    case permuteColumns = "permute-cols"

    /// The names `--null` accepts.
    public static var names: [String] { allCases.map(\.rawValue) }
}

/// The position permutation of a null model: update entry `source[i]` of its tensor is
/// applied at position i, the same permutation at every step, so the null run is the
/// recorded stream with its updates moved (and its cumulative update permuted).
///
/// Tensors are rows × columns with rows = shape[0] and columns the product of the other
/// axes (a 1-D tensor is one row, so `permute-cols` leaves it unchanged). Each tensor
/// draws from its own SplitMix64 stream seeded by the replay seed and its index, so
/// the permutation does not depend on the thread count.
struct NullPermutation: Sendable {
    let kind: NullModelKind
    /// Per flat index (all tensors concatenated): the flat index its update comes from.
    /// (8 bytes per weight; the null run's engine state and one scratch update are the
    /// rest of the null model's memory.)
    let source: [Int]

    init(kind: NullModelKind, tensors: [ReplayTensor], seed: UInt64) {
        self.kind = kind
        var source: [Int] = []
        source.reserveCapacity(tensors.reduce(0) { $0 + $1.count })
        var start = 0
        for (tensorIndex, tensor) in tensors.enumerated() {
            let count = tensor.count
            let rows = tensor.shape.count >= 2 ? tensor.shape[0] : 1
            let columns = rows == 0 ? 0 : count / rows
            var local = Array(start..<(start + count))
            var generator = SplitMix64(seed: seed ^ (0x9E37_79B9_7F4A_7C15 &* UInt64((tensor.streamIndex ?? tensorIndex) + 1)))
            switch kind {
            case .permute:
                NullPermutation.shuffle(&local, count: count, &generator) { $0 }
            case .permuteRows:
                for row in 0..<rows {
                    NullPermutation.shuffle(&local, count: columns, &generator) { row * columns + $0 }
                }
            case .permuteColumns:
                for column in 0..<columns {
                    NullPermutation.shuffle(&local, count: rows, &generator) { $0 * columns + column }
                }
            }
            source += local
            start += count
        }
        self.source = source
    }

    /// Fisher-Yates over the `count` entries of `values` at `position(0) ..< position(count)`.
    static func shuffle(_ values: inout [Int], count: Int, _ generator: inout SplitMix64,
                        position: (Int) -> Int) {
        guard count > 1 else { return }
        for slot in stride(from: count - 1, to: 0, by: -1) {
            let other = Int(generator.next(below: UInt64(slot + 1)))
            values.swapAt(position(slot), position(other))
        }
    }

    /// `delta` with its entries moved: result[i] = delta[source[i]] (a gather, split
    /// over `threads`; every entry is written by exactly one chunk).
    func permuted(_ delta: UnsafeBufferPointer<Float>, into scratch: inout [Float], threads: Int) {
        precondition(delta.count == source.count && scratch.count == source.count, "update does not match the permutation")
        guard let input = delta.baseAddress else { return }
        let from = UnsafeSendable(input)
        source.withUnsafeBufferPointer { source in
            scratch.withUnsafeMutableBufferPointer { target in
                let indices = UnsafeSendable(source.baseAddress!), output = UnsafeSendable(target.baseAddress!)
                ParallelChunks.forEach(count: source.count, chunkSize: 1 << 16, threads: threads) { range in
                    for index in range { output.value[index] = from.value[indices.value[index]] }
                }
            }
        }
    }
}
