import PrecLabSupport

/// One part of a sharded run: shard `index` (1-based) of `count` (`--shard I/N`).
public struct TensorShard: Sendable, Equatable, Codable {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, index >= 1, index <= count else {
            throw PrecLabError.invalidArgument("shard \(index)/\(count) does not exist (expected I/N with 1 <= I <= N)")
        }
        self.index = index
        self.count = count
    }

    /// Parses "I/N" (both decimal integers, 1 <= I <= N).
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]) else {
            throw PrecLabError.invalidArgument("'\(text)' is not a shard I/N (for example 2/8)")
        }
        try self.init(index: index, count: count)
    }

    public var description: String { "\(index)/\(count)" }
}

/// The deterministic partition of tensors among shards, balanced by element count.
///
/// The rule (the Python recorder, tools/preclab_record.py, implements the same one so a
/// recorder shard and a replay shard hold the same tensors):
/// 1. order the tensors by element count, largest first; equal counts by name, compared
///    by Unicode code points (the bytes of UTF-8), smallest first;
/// 2. in that order, give each tensor to the shard with the fewest elements so far;
///    equal loads go to the lowest shard index.
/// Every tensor lands in exactly one shard, and no shard holds more than the lightest
/// one plus the largest single tensor (the greedy largest-first bound).
public enum TensorSharding {
    /// The shard (0-based) of each tensor, in the order given.
    public static func assign(names: [String], elementCounts: [Int], shards: Int) -> [Int] {
        precondition(names.count == elementCounts.count && shards >= 1, "one count per name, one shard at least")
        let keys = names.map { Array($0.utf8) }
        let order = names.indices.sorted { a, b in
            if elementCounts[a] != elementCounts[b] { return elementCounts[a] > elementCounts[b] }
            if keys[a] != keys[b] { return keys[a].lexicographicallyPrecedes(keys[b]) }
            return a < b
        }
        var loads = Array(repeating: 0, count: shards)
        var assignment = Array(repeating: 0, count: names.count)
        for tensor in order {
            var lightest = 0
            for shard in 1..<shards where loads[shard] < loads[lightest] { lightest = shard }
            assignment[tensor] = lightest
            loads[lightest] += elementCounts[tensor]
        }
        return assignment
    }

    /// The names of `shard`'s tensors, in the order given.
    public static func names(of shard: TensorShard, names: [String], elementCounts: [Int]) -> [String] {
        let assignment = assign(names: names, elementCounts: elementCounts, shards: shard.count)
        return names.indices.filter { assignment[$0] == shard.index - 1 }.map { names[$0] }
    }
}
