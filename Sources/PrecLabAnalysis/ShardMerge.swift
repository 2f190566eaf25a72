import PrecLabReplay
import PrecLabSpectral
import PrecLabSupport

/// Joins the shards of one run (`--shard I/N` with every I) into the result the
/// unsharded run computes: the typed per-tensor results of every shard are decoded,
/// put back in the unsharded order, and handed to the same report code, so totals and
/// by-type means are summed in the same order and the JSON is the same bytes.
public enum ShardMerge {
    /// A merged result, ready for the command's usual encodings.
    public enum Merged {
        case comparison(CheckpointComparison)
        case consistency(CheckpointConsistency)
        case replay(ReplayResult, ReplaySpectral?, source: String)
    }

    /// Checks that `shards` (path, parsed JSON) are all the shards of one run, each once,
    /// and merges them. Every refusal is bad data naming the files and the reason.
    public static func merge(_ shards: [(path: String, document: JSONValue)]) throws -> Merged {
        guard !shards.isEmpty else { throw PrecLabError.badData("no shard results to merge") }
        let stamps = try shards.map { try ShardStamp.read($0.document, path: $0.path) }
        let paths = shards.map(\.path)
        try checkSameRun(stamps, paths: paths)
        let order = try checkCoverage(stamps, paths: paths)
        switch stamps[0].command {
        case .compare:
            let parts = try zip(stamps, paths).map { try $0.decodePayload(ComparisonShardPayload.self, path: $1) }
            return .comparison(try mergeComparison(parts, order: order))
        case .consistency:
            let parts = try zip(stamps, paths).map { try $0.decodePayload(ConsistencyShardPayload.self, path: $1) }
            return .consistency(try mergeConsistency(parts, order: order))
        case .replay:
            let parts = try zip(stamps, paths).map { try $0.decodePayload(ReplayShardPayload.self, path: $1) }
            let (result, spectral) = try mergeReplay(parts, order: order, paths: paths)
            return .replay(result, spectral, source: parts[0].source)
        }
    }

    // MARK: Checks

    static func checkSameRun(_ stamps: [ShardStamp], paths: [String]) throws {
        let first = stamps[0]
        for (stamp, path) in zip(stamps, paths).dropFirst() {
            if stamp.command != first.command {
                throw PrecLabError.badData("\(paths[0]) is a \(first.command.rawValue) shard but \(path) is a "
                                           + "\(stamp.command.rawValue) shard: they are not parts of one run")
            }
            if stamp.run != first.run {
                let keys = first.run.pairs.map(\.key) + stamp.run.pairs.map(\.key).filter { first.run[$0] == nil }
                let key = keys.first { first.run[$0] != stamp.run[$0] } ?? "run"
                throw PrecLabError.badData(
                    "\(paths[0]) and \(path) are shards of different runs or options: '\(key)' is "
                        + "\(shortText(first.run[key])) in \(paths[0]) but \(shortText(stamp.run[key])) in \(path)")
            }
            if stamp.shard.count != first.shard.count {
                throw PrecLabError.badData(
                    "\(paths[0]) is shard \(first.shard.description) but \(path) is shard \(stamp.shard.description): "
                        + "shards of different partitions overlap; merge the N shards of one --shard I/N run")
            }
        }
    }

    /// Every shard index once and every partitioned tensor exactly once. Returns, for each
    /// tensor name, its position in the unsharded order.
    static func checkCoverage(_ stamps: [ShardStamp], paths: [String]) throws -> [String: Int] {
        let count = stamps[0].shard.count
        var seenShard: [Int: String] = [:]
        for (stamp, path) in zip(stamps, paths) {
            if let other = seenShard[stamp.shard.index] {
                throw PrecLabError.badData("shard \(stamp.shard.description) is given twice: \(other) and \(path) "
                                           + "overlap")
            }
            seenShard[stamp.shard.index] = path
        }
        let missing = (1...count).filter { seenShard[$0] == nil }
        if !missing.isEmpty {
            throw PrecLabError.badData("shard(s) " + missing.map { "\($0)/\(count)" }.joined(separator: ", ")
                                       + " missing: \(stamps.count) of \(count) shards given")
        }
        let universe = stamps[0].universe
        var owner = Array<String?>(repeating: nil, count: universe)
        var order: [String: Int] = [:]
        for (stamp, path) in zip(stamps, paths) {
            for (index, name) in zip(stamp.indices, stamp.names) {
                if let other = owner[index] {
                    throw PrecLabError.badData("tensor '\(name)' is in both \(other) and \(path): the shards overlap")
                }
                owner[index] = path
                order[name] = index
            }
        }
        if let hole = owner.firstIndex(where: { $0 == nil }) {
            throw PrecLabError.badData("tensor \(hole + 1) of \(universe) is in no shard: a shard is missing or "
                                       + "was cut short")
        }
        return order
    }

    static func shortText(_ value: JSONValue?) -> String {
        guard let value else { return "absent" }
        let text = value.serialized(indent: 0)
        return text.count > 160 ? String(text.prefix(160)) + "..." : text
    }

    // MARK: Per command

    static func mergeComparison(_ parts: [ComparisonShardPayload], order: [String: Int]) throws -> CheckpointComparison {
        let rows = parts.flatMap(\.tensors).sorted { $0.name < $1.name }
        let notCompared = parts.flatMap(\.skipped).filter { $0.scope == .tensor }
            .sorted { order[$0.name, default: 0] < order[$1.name, default: 0] }
        let first = parts[0]
        guard !rows.isEmpty else {
            throw PrecLabError.badData("nothing to compare between \(first.basePath) and \(first.tunedPath) in any shard")
        }
        return CheckpointComparison(basePath: first.basePath, tunedPath: first.tunedPath, options: first.options,
                                    tensors: rows, skipped: notCompared + CheckpointComparison.spectralSkips(rows))
    }

    static func mergeConsistency(_ parts: [ConsistencyShardPayload], order: [String: Int]) throws -> CheckpointConsistency {
        let rows = parts.flatMap(\.tensors).sorted { $0.name < $1.name }
        let skipped = parts.flatMap(\.skipped).sorted { order[$0.name, default: 0] < order[$1.name, default: 0] }
        let first = parts[0]
        guard !rows.isEmpty else {
            throw PrecLabError.badData("nothing to compare: no tensor of \(first.basePath) is present in every run")
        }
        return CheckpointConsistency(basePath: first.basePath, runPaths: first.runPaths, options: first.options,
                                     tensors: rows, skipped: skipped.map { ($0.name, $0.reason) })
    }

    static func mergeReplay(_ parts: [ReplayShardPayload], order: [String: Int],
                            paths: [String]) throws -> (ReplayResult, ReplaySpectral?) {
        var merged = parts[0].result
        let position = { (name: String) in order[name, default: 0] }
        // Tensors in stream order, and each shard's curve columns moved to their place.
        var tensors: [(position: Int, result: TensorReplayResult)] = []
        for part in parts { tensors += part.result.tensors.map { (position($0.tensor.name), $0) } }
        tensors.sort { $0.position < $1.position }
        merged.tensors = tensors.map(\.result)
        let slot = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($1.position, $0) })
        for (part, path) in zip(parts, paths) {
            let result = part.result
            guard result.steps == merged.steps, result.firstStep == merged.firstStep,
                  result.lastStep == merged.lastStep, result.curve.map(\.step) == merged.curve.map(\.step) else {
                throw PrecLabError.badData(file: path, "replayed other steps than \(paths[0]) "
                                           + "(\(result.steps) against \(merged.steps))")
            }
        }
        merged.curve = merged.curve.indices.map { pointIndex in
            var point = merged.curve[pointIndex]
            point.trueChanged = Array(repeating: 0, count: tensors.count)
            for policy in merged.configuration.policies { point.visibleChanged[policy] = point.trueChanged }
            for part in parts {
                let source = part.result.curve[pointIndex]
                for (local, tensor) in part.result.tensors.enumerated() {
                    let target = slot[position(tensor.tensor.name)]!
                    point.trueChanged[target] = source.trueChanged[local]
                    for policy in merged.configuration.policies {
                        point.visibleChanged[policy]![target] = source.visibleChanged[policy]?[local] ?? 0
                    }
                }
            }
            return point
        }
        // FINL mismatches: counts add up, the largest distance wins, the first example is
        // the earliest in stream order.
        let mismatches = parts.compactMap(\.result.finalMismatches)
        if !mismatches.isEmpty {
            let firsts = mismatches.compactMap(\.first)
            var combined = mismatches[0]
            combined.count = mismatches.reduce(0) { $0 + $1.count }
            combined.maxULPDistance = mismatches.map(\.maxULPDistance).max() ?? 0
            combined.first = firsts.min { (position($0.tensor), $0.index) < (position($1.tensor), $1.index) }
            merged.finalMismatches = combined
        }
        // Step views: integer counts over disjoint tensors, so they add up.
        let views = parts.compactMap(\.result.stepViews)
        if var combined = views.first {
            for other in views.dropFirst() {
                for (policy, counts) in other.changedInStep {
                    let mine = combined.changedInStep[policy] ?? Array(repeating: 0, count: counts.count)
                    combined.changedInStep[policy] = zip(mine, counts).map { $0 + $1 }
                }
                if let histogram = other.pureRatioHistogram, let mine = combined.pureRatioHistogram {
                    combined.pureRatioHistogram = zip(mine, histogram).map { $0 + $1 }
                }
                if let changed = other.pureRatioChanged, let mine = combined.pureRatioChanged {
                    combined.pureRatioChanged = zip(mine, changed).map { $0 + $1 }
                }
                combined.pureRatioSkipped += other.pureRatioSkipped
            }
            merged.stepViews = combined
        }
        // The stream's warnings are the same in every shard; the FINL and non-finite ones
        // depend on the tensors and are rebuilt, in the order the engine writes them.
        let ownWarnings = [ReplayEngine.finalMismatchWarning(parts[0].result.finalMismatches),
                           ReplayEngine.nonFiniteWarning(parts[0].result.tensors)].compactMap { $0 }
        merged.warnings = parts[0].result.warnings.filter { !ownWarnings.contains($0) }
        if let warning = ReplayEngine.finalMismatchWarning(merged.finalMismatches) { merged.warnings.append(warning) }
        if let warning = ReplayEngine.nonFiniteWarning(merged.tensors) { merged.warnings.append(warning) }
        merged.finalVerified = parts.allSatisfy(\.result.finalVerified)

        guard let options = parts[0].spectralOptions else { return (merged, nil) }
        let shapes = Dictionary(uniqueKeysWithValues: merged.tensors.map { ($0.tensor.name, $0.tensor.shape) })
        // Entries in stream order (policies in order within a tensor); skips: tensors that
        // are not matrices first, then the rest, each in stream order.
        let entries = parts.flatMap(\.spectralEntries).enumerated()
            .sorted { (position($0.element.tensor), $0.offset) < (position($1.element.tensor), $1.offset) }.map(\.element)
        let skips = parts.flatMap(\.spectralSkipped).enumerated().sorted { a, b in
            let aMatrix = shapes[a.element.name]?.count == 2, bMatrix = shapes[b.element.name]?.count == 2
            return (aMatrix ? 1 : 0, position(a.element.name), a.offset) < (bMatrix ? 1 : 0, position(b.element.name), b.offset)
        }.map { (tensor: $0.element.name, reason: $0.element.reason) }
        return (merged, ReplaySpectral(options: options, entries: entries, skipped: skips))
    }
}
