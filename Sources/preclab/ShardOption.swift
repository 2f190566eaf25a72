import PrecLabAnalysis
import PrecLabSupport

/// `--shard I/N` of replay, compare and consistency: run only shard I of N of the
/// selected tensors (`TensorSharding`) and write a JSON that `preclab merge` joins.
enum ShardOption {
    static let spec = OptionSpec.value("--shard")

    /// The help line every sharded command shows.
    static let helpLine = """
      --shard I/N      only shard I of N (1 <= I <= N) of the selected tensors, balanced
                       by element count; needs --json; join the N JSON files with
                       'preclab merge' (see docs/scale.md)
    """

    static func parse(_ arguments: ParsedArguments) throws -> TensorShard? {
        guard let text = arguments.value("--shard") else { return nil }
        let shard: TensorShard
        do {
            shard = try TensorShard(parsing: text)
        } catch let error as PrecLabError {
            throw UsageError("invalid value for --shard: \(error)")
        }
        guard arguments.value("--json") != nil else {
            throw UsageError("--shard \(text) needs --json FILE: the shard's JSON is what 'preclab merge' joins")
        }
        return shard
    }

    /// Refuses a shard that would hold no tensor (more shards than selected tensors).
    static func check(_ plan: ShardPlan) throws {
        guard !plan.indices.isEmpty else {
            throw UsageError("shard \(plan.shard.description) holds no tensor: only \(plan.names.count) tensor(s) "
                             + "are selected; use at most \(plan.names.count) shards")
        }
    }
}
