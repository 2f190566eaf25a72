import PrecLabFiles
import PrecLabReplay
import PrecLabSpectral
import PrecLabSupport

// How each sharded command partitions its tensors, what identifies its run, and the
// typed results its shard JSON carries. `ShardMerge` reads them back.

/// What a comparison shard carries: everything `CheckpointComparison` holds.
struct ComparisonShardPayload: Codable {
    var basePath: String
    var tunedPath: String
    var options: CheckpointComparisonOptions
    var tensors: [ComparedTensor]
    var skipped: [SkippedTensor]
}

/// What a consistency shard carries: everything `CheckpointConsistency` holds.
struct ConsistencyShardPayload: Codable {
    var basePath: String
    var runPaths: [String]
    var options: ConsistencyOptions
    var tensors: [ConsistentTensor]
    var skipped: [NamedReason]
}

/// What a replay shard carries: the replay result, the spectral picture and the label
/// of the stream.
struct ReplayShardPayload: Codable {
    var source: String
    var result: ReplayResult
    var spectralOptions: SpectralOptions?
    var spectralEntries: [ReplaySpectral.Entry]
    var spectralSkipped: [NamedReason]
}

extension CheckpointComparison {
    /// The partition of a compare run: the selected tensors of BASE in BASE's order, then
    /// those only in TUNED (the order the unsharded run lists skips in), sized by BASE.
    public static func shardPlan(base: Checkpoint, tuned: Checkpoint, selection: TensorSelection,
                                 shard: TensorShard) -> ShardPlan {
        var names: [String] = []
        var counts: [Int] = []
        for tensor in base.tensors where selection.includes(tensor.name) {
            names.append(tensor.name)
            counts.append(tensor.info.elementCount)
        }
        for tensor in tuned.tensors where selection.includes(tensor.name) && base.tensor(named: tensor.name) == nil {
            names.append(tensor.name)
            counts.append(tensor.info.elementCount)
        }
        return ShardPlan(shard: shard, names: names, elementCounts: counts)
    }

    /// The `shard` block of this comparison (one shard of `plan`).
    public func shardStamp(plan: ShardPlan) throws -> ShardStamp {
        var options = self.options
        options.selection = options.selection.unrestricted
        let identity = JSONObject([("base", .string(basePath)), ("tuned", .string(tunedPath)),
                                   ("options", try ShardStamp.encode(options))])
        return try ShardStamp(command: .compare, plan: plan, identity: identity,
                              payload: ComparisonShardPayload(basePath: basePath, tunedPath: tunedPath,
                                                              options: options, tensors: tensors, skipped: skipped))
    }
}

extension CheckpointConsistency {
    /// The partition of a consistency run: the selected tensors of BASE, in BASE's order.
    public static func shardPlan(base: Checkpoint, selection: TensorSelection, shard: TensorShard) -> ShardPlan {
        let selected = base.tensors.filter { selection.includes($0.name) }
        return ShardPlan(shard: shard, names: selected.map(\.name), elementCounts: selected.map(\.info.elementCount))
    }

    /// The `shard` block of this result (one shard of `plan`).
    public func shardStamp(plan: ShardPlan) throws -> ShardStamp {
        var options = self.options
        options.selection = options.selection.unrestricted
        let identity = JSONObject([("base", .string(basePath)), ("runs", .array(runPaths.map { .string($0) })),
                                   ("options", try ShardStamp.encode(options))])
        return try ShardStamp(command: .consistency, plan: plan, identity: identity,
                              payload: ConsistencyShardPayload(
                                basePath: basePath, runPaths: runPaths, options: options, tensors: tensors,
                                skipped: skipped.map { NamedReason(name: $0.name, reason: $0.reason) }))
    }
}

extension ReplaySpectral {
    /// The tensors of the stream at `path` that `selection` keeps, in stream order.
    public static func streamTensors(path: String, selection: TensorSelection) throws -> [ReplayTensor] {
        let reader = try UpdateStreamReader(path: path, options: .init(verifyCRC: false, allowTruncated: true))
        return reader.header.tensors.filter { selection.includes($0.name) }
            .map { ReplayTensor(name: $0.name, shape: $0.shape) }
    }

    /// The partition of a replay: the selected tensors of the stream, in stream order.
    public static func shardPlan(tensors: [ReplayTensor], shard: TensorShard) -> ShardPlan {
        ShardPlan(shard: shard, names: tensors.map(\.name), elementCounts: tensors.map(\.count))
    }

    /// The `shard` block of a replay shard. `options` and `pattern` are what the run was
    /// asked for (`options.tensorNames`, the shard's own tensors, is left out).
    public static func shardStamp(plan: ShardPlan, source: String, result: ReplayResult, spectral: ReplaySpectral?,
                                  spectralOptions: SpectralOptions?, options: StreamReplayOptions,
                                  pattern: String?) throws -> ShardStamp {
        var configuration = result.configuration
        configuration.threads = 0  // results never depend on it
        var streamOptions = options
        streamOptions.tensorNames = nil
        streamOptions.modelPositions = nil
        let identity = JSONObject([
            ("source", .string(source)), ("configuration", try ShardStamp.encode(configuration)),
            ("stream_options", try ShardStamp.encode(streamOptions)),
            ("spectral", try spectralOptions.map { try ShardStamp.encode($0) } ?? .null),
            ("tensors", pattern.map { .string($0) } ?? .null),
        ])
        let payload = ReplayShardPayload(
            source: source, result: result, spectralOptions: spectralOptions,
            spectralEntries: spectral?.entries ?? [],
            spectralSkipped: spectral?.skipped.map { NamedReason(name: $0.tensor, reason: $0.reason) } ?? [])
        return try ShardStamp(command: .replay, plan: plan, identity: identity, payload: payload)
    }
}

/// A stream the recorder wrote as one shard of a model (`TorchUpdateRecorder(...,
/// shards=N)` in tools/preclab_record.py): the header's metadata names the shard, the
/// label of the whole recording and every recorded tensor with its element count, so
/// `replay --shard I/N` on it yields the shard of a replay of the whole recording.
public struct RecordedShard: Sendable {
    public static let shardKey = "preclab_shard"
    public static let sourceKey = "preclab_source"
    public static let tensorsKey = "preclab_model_tensors"

    public let shard: TensorShard
    /// What `source` the merged JSON names (the recording as one stream would be named).
    public let source: String
    /// Every tensor of the recording, in model order, and its element count.
    public let names: [String]
    public let elementCounts: [Int]

    /// The recorded shard described by the stream's metadata; nil when it has none.
    public static func read(path: String) throws -> RecordedShard? {
        let reader = try UpdateStreamReader(path: path, options: .init(verifyCRC: false, allowTruncated: true))
        let metadata = Dictionary(reader.header.metadata.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        guard let shardText = metadata[shardKey] else { return nil }
        func fail(_ what: String) -> PrecLabError { .badData(file: path, "recorder shard metadata: \(what)") }
        let shard: TensorShard
        do { shard = try TensorShard(parsing: shardText) } catch { throw fail("'\(shardKey)' is not I/N") }
        guard let source = metadata[sourceKey] else { throw fail("no '\(sourceKey)'") }
        guard let listText = metadata[tensorsKey], let list = (try? JSONParser.parse(listText))?.arrayValue else {
            throw fail("'\(tensorsKey)' is not a JSON array of [name, element count]")
        }
        var names: [String] = [], counts: [Int] = []
        for entry in list {
            guard let pair = entry.arrayValue, pair.count == 2, let name = pair[0].stringValue,
                  let count = pair[1].integerValue, count >= 0 else {
                throw fail("'\(tensorsKey)' is not a JSON array of [name, element count]")
            }
            names.append(name)
            counts.append(Int(count))
        }
        let recorded = Set(reader.header.tensors.map(\.name))
        guard recorded.isSubset(of: Set(names)) else {
            throw fail("the stream holds tensors its model list does not name")
        }
        return RecordedShard(shard: shard, source: source, names: names, elementCounts: counts)
    }

    /// Every tensor's position in the model (the stochastic-rounding and null-model keys).
    public var modelPositions: [String: Int] {
        Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// The partition of the selected model tensors; the caller checks that the stream
    /// holds exactly the shard's part of it.
    public func plan(selection: TensorSelection) -> ShardPlan {
        let kept = names.indices.filter { selection.includes(names[$0]) }
        return ShardPlan(shard: shard, names: kept.map { names[$0] }, elementCounts: kept.map { elementCounts[$0] })
    }
}
